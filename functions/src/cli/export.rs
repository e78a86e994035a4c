//! `sluice export --topics topics.json --connections connections.json`:
//! seed 000's exporter. Topics run concurrently; one failing does not stop
//! the others; the summary says which failed and why.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use indicatif::MultiProgress;
use sluice_host::codec::SchemaRegistry;
use sluice_host::config::{Connections, TopicEntry, ValueFormat, read_topics};
use sluice_host::export::{ExportOptions, TopicReport, export_topic};
use sluice_host::kafka::{KafkaConfig, ReadPlan};
use sluice_host::parquet::ValueColumn;
use sluice_host::runtime::Limits;
use sluice_host::storage::Storage;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Seed 000's topics.json.
    #[arg(long)]
    topics: PathBuf,
    /// Seed 000's connections.json.
    #[arg(long)]
    connections: PathBuf,
    /// Where to write: a folder, file://, az:// or abfss:// URL [default:
    /// the connections' storage_url, else their Azure filesystem, else
    /// ./sluice-out].
    #[arg(long)]
    out: Option<String>,
    /// A file holding this many rows is closed and a new one started.
    #[arg(long, default_value_t = 1_000_000)]
    max_rows_per_file: u64,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let run = export_all(&args)?;
    print_summary(&run.run_id, &run.root, &run.results);
    Ok(if run.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One export run over every entry of `topics.json`.
pub struct ExportRun {
    pub run_id: String,
    /// Where the files went.
    pub root: String,
    /// Per topic, in the order of `topics.json`.
    pub results: Vec<(String, anyhow::Result<TopicReport>)>,
}

impl ExportRun {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|(_, r)| r.is_err()).count()
    }
}

impl ExportArgs {
    /// The files as the serverless entry point finds them.
    pub fn new(topics: PathBuf, connections: PathBuf, out: Option<String>) -> Self {
        ExportArgs {
            topics,
            connections,
            out,
            max_rows_per_file: 1_000_000,
        }
    }
}

/// Runs every topic concurrently; an error here means nothing ran (bad
/// configuration); per-topic failures are in the result.
pub fn export_all(args: &ExportArgs) -> anyhow::Result<ExportRun> {
    let connections = Connections::read(&args.connections)?;
    let entries = read_topics(&args.topics)?;
    let url = args
        .out
        .clone()
        .unwrap_or_else(|| connections.storage_url());
    let storage = Storage::open(&url, &connections.azure_credentials())
        .with_context(|| format!("opening storage from {}", args.connections.display()))?;
    let root = storage.url().to_owned();
    let kafka = connections.kafka_config();
    let run_id = format!(
        "run-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    );
    let bars = MultiProgress::new();
    let results: Vec<(String, anyhow::Result<TopicReport>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .iter()
            .map(|entry| {
                let (kafka, storage, run_id, bars) = (&kafka, &storage, &run_id, &bars);
                let connections = &connections;
                let max_rows = args.max_rows_per_file;
                scope.spawn(move || {
                    let span = tracing::info_span!("export", topic = entry.topic, run_id);
                    let _entered = span.enter();
                    let result =
                        export_one(kafka, entry, connections, storage, run_id, max_rows, bars);
                    if let Err(error) = &result {
                        tracing::error!(error = format!("{error:#}"), "topic export failed");
                    }
                    (entry.topic.clone(), result)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    ("?".into(), Err(anyhow::anyhow!("export thread panicked")))
                })
            })
            .collect()
    });
    Ok(ExportRun {
        run_id,
        root,
        results,
    })
}

fn export_one(
    kafka: &KafkaConfig,
    entry: &TopicEntry,
    connections: &Connections,
    storage: &Storage,
    run_id: &str,
    max_rows_per_file: u64,
    bars: &MultiProgress,
) -> anyhow::Result<TopicReport> {
    let mut options = ExportOptions::new(run_id);
    options.max_rows_per_file = max_rows_per_file;
    match entry.value_format.unwrap_or(ValueFormat::Json) {
        ValueFormat::Json => options.value = ValueColumn::Json,
        ValueFormat::Raw => options.value = ValueColumn::Raw,
        ValueFormat::Avro => {
            let Some(url) = &connections.schema_registry_url else {
                bail!("value_format avro needs schema_registry_url in connections.json");
            };
            options.registry = Some(Arc::new(SchemaRegistry::new(url)?));
        }
    }
    let bar = bars.add(super::progress::bar(0, &entry.topic));
    let aggregator = match &entry.aggregator {
        Some(name) => {
            let runtime = crate::transforms::runtime()?;
            let dir = crate::transforms::default_dir();
            let transform = crate::transforms::load(&runtime, name, &dir)?;
            Some(transform.aggregator(Limits::default(), Arc::default())?)
        }
        None => None,
    };
    let report = export_topic(
        kafka,
        &ReadPlan::from_entry(entry),
        storage,
        &options,
        aggregator,
        |n| bar.set_position(n),
    )
    .with_context(|| format!("exporting topic {}", entry.topic))?;
    bar.finish_and_clear();
    Ok(report)
}

fn print_summary(run_id: &str, root: &str, results: &[(String, anyhow::Result<TopicReport>)]) {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(topic, result)| match result {
            Ok(r) => vec![
                topic.clone(),
                r.partitions.to_string(),
                r.records.to_string(),
                r.dead_lettered.to_string(),
                r.files.len().to_string(),
                r.bytes().to_string(),
                format!("{:.1}", r.seconds),
                "ok".into(),
            ],
            Err(e) => vec![
                topic.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("FAILED: {e:#}"),
            ],
        })
        .collect();
    println!("export {run_id} into {root}\n");
    print!(
        "{}",
        super::table::render(
            &[
                "topic",
                "partitions",
                "records",
                "dead letters",
                "files",
                "bytes",
                "seconds",
                "status"
            ],
            &rows
        )
    );
}
