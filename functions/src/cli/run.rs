//! `sluice run`: a bounded transformer run from one topic to others.

use std::process::ExitCode;
use std::sync::Arc;

use sluice_host::kafka::{KafkaConfig, ensure_topic};
use sluice_host::pipeline::{Routing, RunStats, TopicRun, transform_topic};
use sluice_host::runtime::Limits;

use super::{Broker, TransformsFrom};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Topic to read, from its earliest offset up to its end at start.
    #[arg(long)]
    input: String,
    /// Output topic (repeatable); records that name no topic go to all.
    #[arg(long = "output", required = true)]
    outputs: Vec<String>,
    /// The transformer, by name (in the registry or the transforms folder).
    #[arg(long, value_name = "NAME", required_unless_present = "wasm")]
    transform: Option<String>,
    /// The transformer as a component file, instead of a name.
    #[arg(long, value_name = "FILE", conflicts_with = "transform")]
    wasm: Option<std::path::PathBuf>,
    /// Dead-letter topic [default: <first output>.dlq].
    #[arg(long)]
    dead_letter: Option<String>,
    /// Records per guest call.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    #[command(flatten)]
    broker: Broker,
    #[command(flatten)]
    transforms: TransformsFrom,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.broker.config()?;
    let transform = super::chosen_transform(
        args.transform.as_deref(),
        args.wasm.as_deref(),
        &args.transforms,
    )?;
    let routing = Routing {
        dead_letter: args
            .dead_letter
            .unwrap_or_else(|| format!("{}.dlq", args.outputs.first().map_or("sluice", |o| o))),
        outputs: args.outputs,
    };
    let stats = run_transform(&config, &transform, &args.input, routing, args.batch_size)?;
    println!(
        "read {}, produced {}, dropped {}, dead-lettered {}",
        stats.read, stats.produced, stats.dropped, stats.dead_lettered
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates the output and dead-letter topics, then runs the transformer.
pub fn run_transform(
    config: &KafkaConfig,
    transform: &Arc<sluice_host::runtime::Transform>,
    input: &str,
    routing: Routing,
    batch_size: usize,
) -> anyhow::Result<RunStats> {
    for topic in routing.outputs.iter().chain([&routing.dead_letter]) {
        ensure_topic(config, topic, 3)?;
    }
    let mut transformer = transform.transformer(Limits::default(), Arc::default())?;
    let progress = super::progress::bar(0, transform.name());
    let run = TopicRun {
        input: input.to_owned(),
        routing,
        batch_size,
    };
    let stats = transform_topic(config, &mut transformer, &run, |s| {
        progress.set_position(s.read);
    })?;
    progress.finish_and_clear();
    Ok(stats)
}
