//! `sluice export --topics topics.json --connections connections.json`:
//! every topic of the topics.json file to Parquet files or a Delta table,
//! through the same host entry point the timer trigger uses; this only
//! parses the flags, shows progress and prints the summary.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar};
use sluice_host::config::{Connections, read_topics};
use sluice_host::export::{ExportRun, RunSettings, export_topics};

use super::TransformsFrom;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The topics.json file: which topics, from which offsets.
    #[arg(long)]
    topics: PathBuf,
    /// The connections.json file: Kafka, the schema registry, storage.
    #[arg(long)]
    connections: PathBuf,
    /// Where to write: a folder, file://, az:// or abfss:// URL [default:
    /// the connections' storage_url, else their Azure filesystem, else
    /// ./sluice-out].
    #[arg(long)]
    out: Option<String>,
    /// Files cover blocks of this many offsets (0..N, N..2N, ...), so none
    /// holds more rows than this.
    #[arg(long, default_value_t = RunSettings::default().max_rows_per_file)]
    max_rows_per_file: u64,
    /// Megabytes the open row groups of one topic may hold in memory; past
    /// it the largest are written out (more partitions, smaller row groups).
    #[arg(long, default_value_t = RunSettings::default().memory_budget >> 20)]
    memory_budget_mb: usize,
    /// A topic exported as a Delta table ("format": "delta") gets a
    /// checkpoint every this many versions, unless the table sets
    /// delta.checkpointInterval.
    #[arg(long, default_value_t = RunSettings::default().checkpoint_interval)]
    checkpoint_interval: u64,
    /// Finished files each topic uploads at once. The end of a run
    /// finishes every partition's file together; on Azure each upload is
    /// mostly a wait on the network.
    #[arg(long, default_value_t = RunSettings::default().upload_concurrency)]
    upload_concurrency: usize,
    /// Megabytes each topic's open files may take on the local disk while
    /// they wait to be uploaded to a remote store; past it the largest are
    /// uploaded early (more, smaller files). A local --out is not counted:
    /// files wait inside it.
    #[arg(long, default_value_t = RunSettings::default().staging_budget >> 20)]
    staging_budget_mb: u64,
    /// Where the aggregators the topics.json entries name are found.
    #[command(flatten)]
    transforms: TransformsFrom,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let connections = Connections::read(&args.connections)?;
    let topics = read_topics(&args.topics)?;
    let transforms = args.transforms.source()?;
    let settings = RunSettings {
        out: args.out.clone(),
        max_rows_per_file: args.max_rows_per_file,
        memory_budget: args.memory_budget_mb.max(1) << 20,
        checkpoint_interval: args.checkpoint_interval.max(1),
        upload_concurrency: args.upload_concurrency.max(1),
        staging_budget: args.staging_budget_mb.max(1) << 20,
    };
    let bars = MultiProgress::new();
    let shown: Mutex<HashMap<String, ProgressBar>> = Mutex::default();
    let progress = |topic: &str, records: u64| {
        if let Ok(mut shown) = shown.lock() {
            shown
                .entry(topic.to_owned())
                .or_insert_with(|| bars.add(super::progress::bar(0, topic)))
                .set_position(records);
        }
    };
    let run = export_topics(&topics, &connections, &settings, &transforms, &progress)
        .with_context(|| format!("export with {}", args.connections.display()))?;
    if let Ok(shown) = shown.lock() {
        shown.values().for_each(ProgressBar::finish_and_clear);
    }
    print_summary(&run);
    Ok(if run.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_summary(run: &ExportRun) {
    let rows: Vec<Vec<String>> = run
        .results
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
                match r.delta.as_ref().and_then(|d| d.version) {
                    Some(version) => format!("ok, table version {version}"),
                    None => "ok".into(),
                },
            ],
            Err(e) => {
                let mut row = vec![String::new(); 8];
                row[0] = topic.clone();
                row[7] = format!("FAILED: {e}");
                row
            }
        })
        .collect();
    println!("export {} into {}\n", run.run_id, run.root);
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
