//! `sluice run`: a bounded transformer run from one topic to others.

use std::process::ExitCode;
use std::sync::Arc;

use sluice_host::kafka::{KafkaConfig, ensure_topic};
use sluice_host::pipeline::{Routing, RunStats, TopicRun, transform_topic};
use sluice_host::runtime::Limits;

use super::{Broker, TransformsDir};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Topic to read, from its earliest offset up to its end at start.
    #[arg(long)]
    input: String,
    /// Output topic (repeatable); records that name no topic go to all.
    #[arg(long = "output", required = true)]
    outputs: Vec<String>,
    /// Transformer: a .wasm path or a name in the transforms folder.
    #[arg(long)]
    transform: String,
    /// Dead-letter topic [default: <first output>.dlq].
    #[arg(long)]
    dead_letter: Option<String>,
    /// Records per guest call.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    #[command(flatten)]
    broker: Broker,
    #[command(flatten)]
    transforms: TransformsDir,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.broker.config();
    let runtime = crate::transforms::runtime()?;
    let transform = crate::transforms::load(&runtime, &args.transform, &args.transforms.dir())?;
    let routing = Routing {
        dead_letter: args
            .dead_letter
            .unwrap_or_else(|| format!("{}.dlq", args.outputs[0])),
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
