//! `sluice demo`: seed 001 end to end on a local broker. Topic names carry a
//! run id because a broker keeps what earlier runs wrote.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::ensure;
use sluice_host::pipeline::Routing;

use super::{Broker, TransformsFrom};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Bookings to generate.
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Folder for the summary's Parquet file.
    #[arg(long, default_value = "sluice-out")]
    out: PathBuf,
    #[command(flatten)]
    broker: Broker,
    #[command(flatten)]
    transforms: TransformsFrom,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let config = args.broker.config();
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let input = format!("expedia.{run_id}");
    let output = format!("expedia_ext.{run_id}");
    let started = Instant::now();

    super::generate::produce_expedia(&config, &input, args.records, args.seed, 3)?;
    eprintln!("loaded {} generated bookings into {input}", args.records);

    let transforms = args.transforms.source()?;
    let categorise = transforms.load_named("stay-category", None)?;
    let routing = Routing {
        outputs: vec![output.clone()],
        dead_letter: format!("{output}.dlq"),
    };
    let stats = super::run::run_transform(&config, &categorise, &input, routing, 1000)?;
    eprintln!(
        "stay-category: read {}, produced {} to {output}, dead-lettered {}",
        stats.read, stats.produced, stats.dead_lettered
    );
    ensure!(
        stats.read == args.records && stats.produced + stats.dead_lettered == stats.read,
        "records went missing: generated {}, read {}, produced {}, dead-lettered {}",
        args.records,
        stats.read,
        stats.produced,
        stats.dead_lettered
    );

    let summarise = transforms.load_named("stay-summary", None)?;
    let summary =
        super::aggregate::aggregate_to_parquet(&config, &summarise, &output, &args.out, 5000)?;
    println!(
        "\nStay categories of {} bookings ({output}):\n",
        summary.read
    );
    print!("{}", summary.table());
    println!(
        "\nsummary written to {}  ({:.1} s in all)",
        summary.path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
