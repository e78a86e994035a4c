//! `sluice fetch`: records at given offsets, the command-line twin of seed
//! 000's ad hoc fetch page; optionally a dry run of a transform on them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use sluice_host::kafka::Start;

use sluice_host::fetch::{Fetch, FetchLimits, FetchQuery, fetch, reader_pool};

use crate::render::{write_csv, write_json_lines, write_parquet};

use super::{Broker, TransformsFrom};

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 0)]
    partition: i32,
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
    #[command(flatten)]
    broker: Broker,
    #[command(flatten)]
    transforms: TransformsFrom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Json,
    Csv,
    Parquet,
}

pub fn run(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let query = FetchQuery {
        topic: args.topic.clone(),
        start: match args.from_timestamp {
            Some(millis) => Start::Timestamp {
                partitions: vec![args.partition],
                millis,
            },
            None => Start::Offsets(BTreeMap::from([(args.partition, args.offset)])),
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
    };
    // The command line is trusted with any count; only the HTTP API caps it.
    let fetched = fetch(
        &reader_pool(args.broker.config()?),
        &query,
        &FetchLimits::none(),
        &how,
    )?;
    let (records, outcomes) = (fetched.records, fetched.outcomes);
    let mut out: Box<dyn Write + Send> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    match args.format {
        Format::Json => write_json_lines(&records, outcomes.as_deref(), &mut out)?,
        Format::Csv => write_csv(&records, &mut out)?,
        Format::Parquet => {
            if args.out.is_none() {
                bail!("--format parquet needs --out FILE");
            }
            write_parquet(&records, out)?;
        }
    }
    eprintln!(
        "{} records from {} partition {} starting at offset {}",
        records.len(),
        args.topic,
        args.partition,
        args.offset
    );
    Ok(ExitCode::SUCCESS)
}
