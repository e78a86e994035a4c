//! `sluice export --topics topics.json --connections connections.json`:
//! every topic of the topics.json file to Parquet files or a Delta table,
//! through the same host entry point the timer trigger uses; this only
//! parses the flags, shows progress and prints the summary.
//! `sluice export status`: the time buckets of the time-partitioned topics.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar};
use sluice_host::config::{Connections, read_topics};
use sluice_host::export::{ExportRun, RunSettings, TopicStatus, export_status, export_topics};

use super::TransformsFrom;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ExportArgs {
    #[command(subcommand)]
    command: Option<ExportCommand>,
    /// The topics.json file: which topics, from which offsets.
    #[arg(long, required = true)]
    topics: Option<PathBuf>,
    /// The connections.json file: Kafka, the schema registry, storage.
    #[arg(long, required = true)]
    connections: Option<PathBuf>,
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
    /// A partition's open files are finished and stored once one of them
    /// reaches this many megabytes; compaction merges files up to it.
    #[arg(long, default_value_t = RunSettings::default().target_file_bytes >> 20)]
    target_file_mb: u64,
    /// ... or once they have been open this many seconds.
    #[arg(long, default_value_t = RunSettings::default().max_file_age.as_secs())]
    max_file_age_secs: u64,
    /// ... or once no record has reached them for this many seconds.
    #[arg(long, default_value_t = RunSettings::default().max_file_idle.as_secs())]
    max_file_idle_secs: u64,
    /// Leave the small files of complete time buckets as they are (a topic
    /// with "partition_by" has them merged at the end of each run).
    #[arg(long)]
    no_compact: bool,
    /// Where the aggregators the topics.json entries name are found.
    #[command(flatten)]
    transforms: TransformsFrom,
}

#[derive(Debug, clap::Subcommand)]
enum ExportCommand {
    /// The time buckets of each topic with "partition_by": complete (every
    /// partition has passed it) or open, its marker, its files.
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// The topics.json file.
    #[arg(long)]
    topics: PathBuf,
    /// The connections.json file (for the storage).
    #[arg(long)]
    connections: PathBuf,
    /// Where the export writes, instead of the connections' storage.
    #[arg(long)]
    out: Option<String>,
    /// How many of the newest buckets to show.
    #[arg(long, default_value_t = 48)]
    buckets: usize,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if let Some(ExportCommand::Status(status)) = args.command {
        return print_status(&status);
    }
    let (Some(topics), Some(connections_file)) = (&args.topics, &args.connections) else {
        anyhow::bail!("give --topics and --connections");
    };
    let connections = Connections::read(connections_file)?;
    let topics = read_topics(topics)?;
    let transforms = args.transforms.source()?;
    let settings = RunSettings {
        out: args.out.clone(),
        max_rows_per_file: args.max_rows_per_file,
        memory_budget: args.memory_budget_mb.max(1) << 20,
        checkpoint_interval: args.checkpoint_interval.max(1),
        upload_concurrency: args.upload_concurrency.max(1),
        staging_budget: args.staging_budget_mb.max(1) << 20,
        target_file_bytes: args.target_file_mb.max(1) << 20,
        max_file_age: std::time::Duration::from_secs(args.max_file_age_secs),
        max_file_idle: std::time::Duration::from_secs(args.max_file_idle_secs),
        compact: !args.no_compact,
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
        .with_context(|| format!("export with {}", connections_file.display()))?;
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

fn print_status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let connections = Connections::read(&args.connections)?;
    let topics = read_topics(&args.topics)?;
    let statuses = export_status(&topics, &connections, args.out.as_deref(), args.buckets)
        .with_context(|| format!("status with {}", args.connections.display()))?;
    if statuses.is_empty() {
        println!("no topic of {} has \"partition_by\"", args.topics.display());
    }
    let mut failed = false;
    for (topic, status) in statuses {
        match status {
            Ok(status) => print_topic_status(&status),
            Err(error) => {
                failed = true;
                println!("{topic}: FAILED: {error}\n");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_topic_status(status: &TopicStatus) {
    let through = status
        .complete_through
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "nothing complete yet".to_owned(),
            |at| {
                format!(
                    "complete through {}",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            },
        );
    println!(
        "{} ({}, by {}): {through}\n",
        status.topic,
        status.format.name(),
        status.partition_by.name()
    );
    let rows: Vec<Vec<String>> = status
        .buckets
        .iter()
        .map(|b| {
            vec![
                b.bucket.clone(),
                if b.complete { "complete" } else { "open" }.to_owned(),
                if b.marker { "yes" } else { "no" }.to_owned(),
                b.files.to_string(),
                b.late_files.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(&["bucket", "state", "marker", "files", "late files"], &rows)
    );
    println!();
}
