//! `sluice fetch`: records at given offsets, the command-line twin of seed
//! 000's ad hoc fetch page; optionally a dry run of a transform on them.
//! With `--key`, `--where`, `--newest-first` or `--cursor` it searches
//! instead (`sluice_host::search`), the twin of `GET /api/search`. With
//! `--export-topics`, offsets below a partition's earliest are read from
//! where the export puts the topic, as `sluice serve` does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use sluice_host::config::{Connections, read_topics};
use sluice_host::kafka::Start;
use sluice_host::lake::{Lake, Source};

use sluice_host::fetch::{Fetch, FetchLimits, FetchQuery, fetch, reader_pool};
use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::GuestError;
use sluice_host::search::{
    Cursor, KeyForm, KeySearch, Order, Partitioner, SearchHow, SearchLimits, SearchQuery,
};

use crate::render::{
    mark_source, record_json, show_key_as, write_csv, write_json_lines, write_parquet,
};

use super::{Broker, TransformsFrom};

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[arg(long)]
    topic: String,
    /// The partition (0 when fetching; every one when searching).
    #[arg(long)]
    partition: Option<i32>,
    /// First offset to read.
    #[arg(long, default_value_t = 0)]
    offset: i64,
    /// Start at the first record at or after this time (Unix epoch
    /// milliseconds) instead of `--offset`.
    #[arg(long, conflicts_with = "offset")]
    from_timestamp: Option<i64>,
    /// Most records to return; never past the partition's end.
    #[arg(long, default_value_t = 10)]
    count: u64,
    /// Search: records with this key, in the partition the producer's
    /// partitioner chose for it (see --partitioner).
    #[arg(long, group = "search_key")]
    key: Option<String>,
    /// Search: records whose key is these bytes, in hex (a key that is not
    /// text: an integer, an Avro record); records show it as `key_hex`.
    #[arg(long, value_name = "HEX", group = "search_key")]
    key_hex: Option<String>,
    /// Search: the key's bytes in base64; records show it as `key_base64`.
    #[arg(long, value_name = "BASE64", group = "search_key")]
    key_base64: Option<String>,
    /// Search: the producer's partitioners, comma-separated, by librdkafka's
    /// names: murmur2, murmur2_random (Java clients), consistent,
    /// consistent_random (librdkafka's default), fnv1a, fnv1a_random.
    #[arg(
        long,
        value_delimiter = ',',
        requires = "search_key",
        default_value = "murmur2,consistent_random"
    )]
    partitioner: Vec<Partitioner>,
    /// Search: with a key, read every partition, not only the partitioners'.
    #[arg(long, requires = "search_key")]
    all_partitions: bool,
    /// Search: a filter, e.g. `value.country == "NO" and headers.source contains "web"`.
    #[arg(long = "where", value_name = "FILTER")]
    filter: Option<String>,
    /// Search: each partition newest first, read backwards from its end.
    #[arg(long)]
    newest_first: bool,
    /// Search: go on where an earlier search stopped (its printed cursor).
    #[arg(long, conflicts_with_all = ["offset", "from_timestamp"])]
    cursor: Option<String>,
    /// json (one JSON line per record), csv or parquet (needs --out).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Dry run: show what this transformer (by name) would do with each
    /// record.
    #[arg(long, value_name = "NAME")]
    transform: Option<String>,
    /// Dry run of a transformer component file, instead of a name.
    #[arg(long, value_name = "FILE", conflicts_with = "transform")]
    wasm: Option<PathBuf>,
    /// The export's topics.json: offsets below a partition's earliest
    /// (deleted by retention or compaction) are read from where it puts
    /// the topic, marked `"source": "lake"`.
    #[arg(long, env = "SLUICE_TOPICS", value_name = "FILE")]
    export_topics: Option<PathBuf>,
    /// The export's connections.json (its storage and credentials).
    #[arg(
        long,
        env = "SLUICE_CONNECTIONS",
        value_name = "FILE",
        default_value = "connections.json"
    )]
    export_connections: PathBuf,
    /// Where the export puts its files, when not the connections' storage.
    #[arg(long, env = "SLUICE_EXPORT_URL", value_name = "URL")]
    export_url: Option<String>,
    #[command(flatten)]
    broker: Broker,
    #[command(flatten)]
    transforms: TransformsFrom,
}

/// The export read back, when `--export-topics` names it.
fn lake(args: &FetchArgs) -> anyhow::Result<Option<Arc<Lake>>> {
    let Some(topics) = &args.export_topics else {
        return Ok(None);
    };
    let entries = read_topics(topics).context("--export-topics")?;
    let connections =
        Connections::read(&args.export_connections).context("--export-connections")?;
    let lake = Lake::open(&entries, &connections, args.export_url.as_deref())
        .context("the export's storage")?;
    Ok(Some(Arc::new(lake)))
}

/// What the lake gave and could not give, for stderr.
fn tell_lake(sources: &[Source], missing: &[sluice_host::lake::Missing]) {
    let from_lake = sources.iter().filter(|s| **s == Source::Lake).count();
    if from_lake > 0 {
        eprintln!("{from_lake} of them from the export (below the partition's earliest offset)");
    }
    for gap in missing {
        eprintln!(
            "partition {} offsets {}-{} not returned: {}",
            gap.partition, gap.first, gap.last, gap.reason
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Json,
    Csv,
    Parquet,
}

impl FetchArgs {
    /// The key searched for, as written, and how (`--key`, `--key-hex` or
    /// `--key-base64`; clap lets one through at most).
    fn searched_key(&self) -> Option<(&'static str, KeyForm, &str)> {
        [
            ("--key", KeyForm::Text, &self.key),
            ("--key-hex", KeyForm::Hex, &self.key_hex),
            ("--key-base64", KeyForm::Base64, &self.key_base64),
        ]
        .into_iter()
        .find_map(|(flag, form, text)| text.as_deref().map(|text| (flag, form, text)))
    }
}

pub fn run(args: FetchArgs) -> anyhow::Result<ExitCode> {
    if args.searched_key().is_some()
        || args.filter.is_some()
        || args.newest_first
        || args.cursor.is_some()
    {
        return search(args);
    }
    let partition = args.partition.unwrap_or(0);
    let query = FetchQuery {
        topic: args.topic.clone(),
        start: match args.from_timestamp {
            Some(millis) => Start::Timestamp {
                partitions: vec![partition],
                millis,
            },
            None => Start::Offsets(BTreeMap::from([(partition, args.offset)])),
        },
        count: args.count,
    };
    let dry_run = if args.transform.is_some() || args.wasm.is_some() {
        Some(super::chosen_transform(
            args.transform.as_deref(),
            args.wasm.as_deref(),
            &args.transforms,
        )?)
    } else {
        None
    };
    let how = Fetch {
        avro: None,
        dry_run,
        lake: lake(&args)?,
    };
    // The command line is trusted with any count; only the HTTP API caps it.
    let fetched = fetch(
        &reader_pool(args.broker.config()?),
        &query,
        &FetchLimits::none(),
        &how,
    )?;
    let (records, outcomes) = (fetched.records, fetched.outcomes);
    write(
        &args,
        &records,
        outcomes.as_deref(),
        &fetched.sources,
        KeyForm::Text,
    )?;
    eprintln!(
        "{} records from {} partition {} starting at offset {}",
        records.len(),
        args.topic,
        partition,
        args.offset
    );
    tell_lake(&fetched.sources, &fetched.missing);
    Ok(ExitCode::SUCCESS)
}

/// The records in the asked format, to `--out` or stdout; JSON lines show
/// each key in `key_form` too when it is hex or base64.
fn write(
    args: &FetchArgs,
    records: &[KafkaRecord],
    outcomes: Option<&[Result<Outcome, GuestError>]>,
    sources: &[Source],
    key_form: KeyForm,
) -> anyhow::Result<()> {
    let mut out: Box<dyn Write + Send> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    match args.format {
        Format::Json if key_form != KeyForm::Text => {
            for (i, record) in records.iter().enumerate() {
                let mut line = record_json(record, outcomes.and_then(|o| o.get(i)));
                mark_source(&mut line, sources.get(i));
                show_key_as(&mut line, record.key.as_deref(), key_form);
                writeln!(out, "{line}")?;
            }
        }
        Format::Json => write_json_lines(records, outcomes, sources, &mut out)?,
        Format::Csv => write_csv(records, &mut out)?,
        Format::Parquet => {
            if args.out.is_none() {
                bail!("--format parquet needs --out FILE");
            }
            write_parquet(records, out)?;
        }
    }
    Ok(())
}

/// `--key`, `--where`, `--newest-first`, `--cursor`: a search of the topic
/// for up to `--count` matches, without the server's budgets.
fn search(args: FetchArgs) -> anyhow::Result<ExitCode> {
    if args.transform.is_some() || args.wasm.is_some() {
        bail!("a dry run (--transform, --wasm) is for fetches at offsets, not searches");
    }
    let key = match args.searched_key() {
        Some((flag, form, text)) => Some((form.decode(text).context(flag)?, form)),
        None => None,
    };
    let key_form = key.as_ref().map_or(KeyForm::Text, |(_, form)| *form);
    let query = SearchQuery {
        topic: args.topic.clone(),
        partitions: args.partition.into_iter().collect(),
        key: key.map(|(key, _)| KeySearch {
            key,
            partitioners: args.partitioner.clone(),
            all_partitions: args.all_partitions,
        }),
        filter: match &args.filter {
            Some(text) => Some(text.parse().context("--where")?),
            None => None,
        },
        from_timestamp: args.from_timestamp,
        order: if args.newest_first {
            Order::NewestFirst
        } else {
            Order::OldestFirst
        },
        cursor: match &args.cursor {
            Some(text) => Some(text.parse::<Cursor>().context("--cursor")?),
            None => None,
        },
        limit: args.count,
        max_scanned: None,
        max_time: None,
    };
    let searched = sluice_host::search::search(
        &reader_pool(args.broker.config()?),
        &query,
        &SearchLimits::none(),
        &SearchHow {
            avro: None,
            lake: lake(&args)?,
        },
    )?;
    write(&args, &searched.records, None, &searched.sources, key_form)?;
    eprintln!(
        "{} records found in {} partitions {:?}, {} looked at",
        searched.records.len(),
        args.topic,
        searched.partitions,
        searched.scanned
    );
    tell_lake(&searched.sources, &searched.missing);
    for (partitioner, partition) in &searched.key_partitions {
        eprintln!("{partitioner} puts the key in partition {partition}");
    }
    if let Some(cursor) = &searched.cursor {
        eprintln!("more to search: --cursor {cursor}");
    }
    Ok(ExitCode::SUCCESS)
}
