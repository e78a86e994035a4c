//! `sluice import --from URL --topic T`: JSON lines, Avro and Parquet files
//! from a folder or Azure storage into a topic, one JSON record per row.
//! Resumable (the progress file is in the folder); a file that cannot be
//! read is named and the others go on; the exit status says whether any
//! failed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressStyle;
use sluice_host::import::{
    DEFAULT_KEEP_BUDGET, DEFAULT_LEASE, Format, ImportOptions, ImportReport, import, progress_key,
};
use sluice_host::kafka::ensure_topic;
use sluice_host::storage::AzureCredentials;

use super::Broker;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Folder to import: a path, `file://…`, `az://container/dir` or
    /// `abfss://filesystem@account.dfs.core.windows.net/dir`. Files in
    /// sub-folders are included; names starting with `.` or `_` are not.
    #[arg(long)]
    from: String,
    /// Topic to produce to (created if missing).
    #[arg(long)]
    topic: String,
    /// Read every file as this format [default: by extension: .jsonl,
    /// .ndjson, .json, .avro, .parquet; other files are skipped].
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// A top-level field whose value becomes the record key.
    #[arg(long)]
    key: Option<String>,
    /// Partitions when the topic is created.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Rows produced and acknowledged together; progress is recorded after
    /// each chunk, so a crash repeats at most this many rows.
    #[arg(long, default_value_t = 1000)]
    chunk_rows: usize,
    /// Megabytes of a file's checked rows kept in memory to produce them
    /// (every row is read before any is produced); a file whose rows need
    /// more is read a second time instead. Files are read from disk (from
    /// Azure, downloaded to a temporary file first), so this, not the
    /// largest file, is what bounds the import's memory.
    #[arg(long, default_value_t = DEFAULT_KEEP_BUDGET >> 20)]
    keep_budget_mb: usize,
    /// Seconds the import's lease (one import of a folder into a topic at a
    /// time) lasts unrenewed. It is renewed every third of this; an import
    /// that died is taken over this long after its last renewal, and a new
    /// one waits for that instead of failing.
    #[arg(long, default_value_t = DEFAULT_LEASE.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    lease_seconds: u64,
    #[command(flatten)]
    azure: AzureArgs,
    #[command(flatten)]
    broker: Broker,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    /// JSON lines.
    Jsonl,
    /// Avro object container files.
    Avro,
    Parquet,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Jsonl => Format::JsonLines,
            FormatArg::Avro => Format::Avro,
            FormatArg::Parquet => Format::Parquet,
        }
    }
}

/// Azure credentials for `az://` and `abfss://` URLs (the same flags and
/// variables as the registry's).
#[derive(Debug, clap::Args)]
struct AzureArgs {
    /// Azure storage account (azure_storage_account_name in connections.json).
    #[arg(long, env = "SLUICE_AZURE_ACCOUNT")]
    azure_account: Option<String>,
    /// Azure storage account key.
    #[arg(long, env = "SLUICE_AZURE_KEY", hide_env_values = true)]
    azure_key: Option<String>,
    /// Blob endpoint, for Azurite or a sovereign cloud.
    #[arg(long, env = "SLUICE_AZURE_ENDPOINT")]
    azure_endpoint: Option<String>,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = args.broker.config()?;
    ensure_topic(&config, &args.topic, args.partitions)?;
    let azure = AzureCredentials {
        account: args.azure.azure_account.clone(),
        key: args.azure.azure_key.clone(),
        endpoint: args.azure.azure_endpoint.clone(),
        ..AzureCredentials::default()
    };
    let options = ImportOptions {
        format: args.format.map(Format::from),
        key_field: args.key.clone(),
        chunk_rows: args.chunk_rows.max(1),
        keep_budget: args.keep_budget_mb << 20,
        lease: Duration::from_secs(args.lease_seconds),
    };
    let bar = super::progress::bar(0, "importing");
    // Bytes rather than rows: the total is known before any file is read.
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {bytes}/{total_bytes} ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("importing");
    let started = Instant::now();
    let report = import(
        &config,
        &args.from,
        &azure,
        &args.topic,
        &options,
        |progress| {
            bar.set_length(progress.bytes_total);
            bar.set_position(progress.bytes_done);
        },
    )
    .with_context(|| format!("importing {} into {}", args.from, args.topic))?;
    bar.finish_and_clear();
    print_summary(&args, &report, started.elapsed().as_secs_f64());
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_summary(args: &ImportArgs, report: &ImportReport, seconds: f64) {
    for failed in &report.failed {
        eprintln!("failed: {failed}");
    }
    let rows = report.rows();
    eprintln!(
        "imported {} files, {rows} rows to {} in {seconds:.1} s ({:.0} rows/s); {} already done, {} skipped, {} failed",
        report.imported.len(),
        args.topic,
        rows as f64 / seconds.max(1e-9),
        report.already_done.len(),
        report.skipped.len(),
        report.failed.len(),
    );
    if !report.failed.is_empty() {
        eprintln!(
            "progress is in {}/{}: a re-run imports only what is not done",
            args.from.trim_end_matches('/'),
            progress_key(&args.topic)
        );
    }
}
