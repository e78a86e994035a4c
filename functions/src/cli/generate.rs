//! `sluice gen expedia --topic T --count N [--rate R]`: deterministic records
//! into a topic, with a progress bar and the rate at the end.

use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sluice_host::generate::{
    ClickstreamGenerator, ExpediaGenerator, Generator, Pacing, StayMix, produce_generated,
};
use sluice_host::kafka::{KafkaConfig, ensure_topic};

use super::Broker;

#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// What to generate.
    #[arg(value_enum)]
    kind: Kind,
    /// Topic to produce to (created if missing).
    #[arg(long)]
    topic: String,
    /// Number of records.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Records per second on average (default: as fast as the broker takes
    /// them).
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Same seed, same records.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Partitions when the topic is created.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    #[command(flatten)]
    broker: Broker,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// Hotel booking searches, like the expedia data set.
    Expedia,
    /// Web click events, like the clickstream pipeline's.
    Clickstream,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a positive number of records per second"
        )),
    }
}

pub fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    let config = args.broker.config()?;
    let generator = match args.kind {
        Kind::Expedia => Generator::Expedia(ExpediaGenerator::new(args.seed, StayMix::default())),
        Kind::Clickstream => {
            let start = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            Generator::Clickstream(ClickstreamGenerator::new(args.seed, start))
        }
    };
    let pacing = Pacing {
        rate: args.rate,
        ..Pacing::default()
    };
    let started = Instant::now();
    produce(
        &config,
        &args.topic,
        args.count,
        args.partitions,
        pacing,
        generator,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {} records to {} in {seconds:.1} s ({:.0} records/s)",
        args.count,
        args.topic,
        args.count as f64 / seconds.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// Produces `count` expedia records keyed by id, acknowledged before return.
pub fn produce_expedia(
    config: &KafkaConfig,
    topic: &str,
    count: u64,
    seed: u64,
    partitions: i32,
) -> anyhow::Result<()> {
    let bookings = Generator::Expedia(ExpediaGenerator::new(seed, StayMix::default()));
    produce(
        config,
        topic,
        count,
        partitions,
        Pacing::default(),
        bookings,
    )
}

/// Creates the topic if missing, then produces with a progress bar.
fn produce(
    config: &KafkaConfig,
    topic: &str,
    count: u64,
    partitions: i32,
    pacing: Pacing,
    generator: Generator,
) -> anyhow::Result<()> {
    ensure_topic(config, topic, partitions)?;
    let progress = super::progress::bar(count, "generating");
    produce_generated(config, topic, count, pacing, generator, |sent| {
        progress.set_position(sent)
    })
    .with_context(|| format!("generating {count} records into {topic}"))?;
    progress.finish_and_clear();
    Ok(())
}
