//! `sluice aggregate`: a topic through an aggregator into a Parquet file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use sluice_host::kafka::KafkaConfig;
use sluice_host::pipeline::aggregate_topic;
use sluice_host::runtime::{Limits, Transform};
use sluice_host::table::write_json_records;

use super::{Broker, TransformsFrom};

#[derive(Debug, clap::Args)]
pub struct AggregateArgs {
    /// Topic to read, from its earliest offset up to its end at start.
    #[arg(long)]
    input: String,
    /// The aggregator, by name (in the registry or the transforms folder).
    #[arg(long, value_name = "NAME", required_unless_present = "wasm")]
    aggregator: Option<String>,
    /// The aggregator as a component file, instead of a name.
    #[arg(long, value_name = "FILE", conflicts_with = "aggregator")]
    wasm: Option<PathBuf>,
    /// Folder the Parquet file goes to.
    #[arg(long, default_value = "sluice-out")]
    out: PathBuf,
    #[arg(long, default_value_t = 5000)]
    batch_size: usize,
    #[command(flatten)]
    broker: Broker,
    #[command(flatten)]
    transforms: TransformsFrom,
}

pub fn run(args: AggregateArgs) -> anyhow::Result<ExitCode> {
    let config = args.broker.config()?;
    let aggregator = super::chosen_transform(
        args.aggregator.as_deref(),
        args.wasm.as_deref(),
        &args.transforms,
    )?;
    let result = aggregate_to_parquet(
        &config,
        &aggregator,
        &args.input,
        &args.out,
        args.batch_size,
    )?;
    print!("{}", result.table());
    println!(
        "{} rows written to {}",
        result.rows.len(),
        result.path.display()
    );
    if !result.refused.is_empty() {
        // Each was logged with its record; the exit code says some were.
        println!(
            "{} records left out: the aggregator failed on them (see the log)",
            result.refused.len()
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

pub struct Aggregated {
    pub read: u64,
    pub rows: Vec<Value>,
    pub path: PathBuf,
    /// Records the aggregator failed on, left out of the rows.
    pub refused: Vec<sluice_host::runtime::GuestError>,
}

impl Aggregated {
    /// The rows as a table, columns in the order of the first row's fields.
    pub fn table(&self) -> String {
        let header: Vec<&str> = self
            .rows
            .first()
            .and_then(Value::as_object)
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| {
                header
                    .iter()
                    .map(|h| match &row[*h] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        super::table::render(&header, &rows)
    }
}

/// Runs the aggregator over the whole topic and writes
/// `<out>/<aggregator>/<topic>.parquet` (replaced whole on a re-run).
pub fn aggregate_to_parquet(
    config: &KafkaConfig,
    aggregator: &Arc<Transform>,
    input: &str,
    out: &Path,
    batch_size: usize,
) -> anyhow::Result<Aggregated> {
    let window = aggregator.aggregator(Limits::default(), Arc::default())?;
    let aggregated = aggregate_topic(config, window, input, batch_size)?;
    let rows = aggregated
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let value = r.value.as_deref().unwrap_or_default();
            serde_json::from_slice(value)
                .with_context(|| format!("aggregator {} result {i} is not JSON", aggregator.name()))
        })
        .collect::<anyhow::Result<Vec<Value>>>()?;
    let path = out.join(aggregator.name()).join(format!("{input}.parquet"));
    write_json_records(&path, &rows)?;
    Ok(Aggregated {
        read: aggregated.read,
        rows,
        path,
        refused: aggregated.refused,
    })
}
