//! `sluice gen expedia --topic T --count N`: deterministic records into a
//! topic, with a progress bar and the rate at the end.

use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sluice_host::generate::{ClickstreamGenerator, ExpediaGenerator, StayMix};
use sluice_host::kafka::{KafkaConfig, ProduceRecord, Producer, ensure_topic};

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
    /// Hotel booking searches (seed 001).
    Expedia,
    /// Web click events (seed 004).
    Clickstream,
}

pub fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    let config = args.broker.config();
    let started = Instant::now();
    match args.kind {
        Kind::Expedia => {
            produce_expedia(&config, &args.topic, args.count, args.seed, args.partitions)?
        }
        Kind::Clickstream => {
            let start = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let events = ClickstreamGenerator::new(args.seed, start);
            produce(
                &config,
                &args.topic,
                args.count,
                args.partitions,
                events,
                "user_id",
            )?
        }
    }
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
    let bookings = ExpediaGenerator::new(seed, StayMix::default());
    produce(config, topic, count, partitions, bookings, "id")
}

/// Produces `count` generated events keyed by `key_field`, in acknowledged
/// chunks, with a progress bar.
fn produce(
    config: &KafkaConfig,
    topic: &str,
    count: u64,
    partitions: i32,
    mut events: impl Iterator<Item = serde_json::Value>,
    key_field: &str,
) -> anyhow::Result<()> {
    ensure_topic(config, topic, partitions)?;
    let producer = Producer::new(config)?;
    let progress = super::progress::bar(count, "generating");
    let mut sent = 0;
    while sent < count {
        let chunk = (count - sent).min(5_000);
        let batch: Vec<ProduceRecord> = (&mut events)
            .take(chunk as usize)
            .map(|value| ProduceRecord {
                topic: topic.to_owned(),
                partition: None,
                key: Some(value[key_field].to_string().into_bytes()),
                value: Some(value.to_string().into_bytes()),
                headers: Vec::new(),
            })
            .collect();
        producer
            .send_all(&batch)
            .with_context(|| format!("producing generated records {sent}.. to {topic}"))?;
        sent += chunk;
        progress.set_position(sent);
    }
    progress.finish_and_clear();
    Ok(())
}
