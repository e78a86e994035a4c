//! `sluice enrich --pipeline FILE`: a long-running consumer-group worker.
//! Start more with the same pipeline to share the partitions; SIGTERM or
//! Ctrl-C stops it after the current step, with what is finished committed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sluice_host::enrich::{Enricher, PipelineDefinition, WorkerOptions, run_worker};
use sluice_host::health::{Heartbeats, default_worker_name};
use sluice_host::kafka::{create_topic, require_topics};
use sluice_host::transforms::{DEFAULT_RELOAD, Followed};

use super::{Broker, TransformsFrom};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["pipeline", "name"])))]
pub struct EnrichArgs {
    /// Pipeline definition (JSON): inputs, outputs, transform, join, ...
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// A pipeline stored in the registry, by name.
    #[arg(long, requires = "url")]
    name: Option<String>,
    /// How often the registry is checked for a newly activated version.
    #[arg(long, default_value_t = DEFAULT_RELOAD.as_millis() as u64)]
    reload_ms: u64,
    /// Create output and dead-letter topics that do not exist yet (else the
    /// worker refuses to start, naming the missing topic).
    #[arg(long)]
    create_topics: bool,
    /// With --create-topics: partitions of a created topic.
    #[arg(long, default_value_t = 3, requires = "create_topics")]
    partitions: i32,
    /// With --create-topics: replicas of a created topic [default: the
    /// broker's default.replication.factor].
    #[arg(long, default_value_t = -1, requires = "create_topics", allow_negative_numbers = true)]
    replication_factor: i32,
    /// A stable name for this worker in its group (Kafka static membership):
    /// a restarted worker takes its partitions back at once instead of
    /// after the group notices the old one is gone. One per worker.
    #[arg(long, env = "SLUICE_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (records per outcome
    /// and version, consumer lag, guest call times, join members waiting).
    #[arg(long, env = "SLUICE_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// How often the worker stores its heartbeat in the registry (totals,
    /// rate, lag), for the topology page; one silent for three of these
    /// shows as silent there.
    #[arg(long, default_value_t = 5_000, value_name = "MS")]
    heartbeat_ms: u64,
    /// Seconds between progress lines in the log.
    #[arg(long, default_value_t = 10)]
    progress_every: u64,
    #[command(flatten)]
    broker: Broker,
    /// The registry (pipelines by name, transforms followed as they are
    /// activated), or a folder of transforms.
    #[command(flatten)]
    transforms: TransformsFrom,
}

pub fn run(args: EnrichArgs) -> anyhow::Result<ExitCode> {
    let transforms = args.transforms.source()?;
    let registry = transforms.registry_store().cloned();
    let definition = match (&args.pipeline, &args.name, &registry) {
        (Some(path), _, _) => PipelineDefinition::read(path)?,
        (None, Some(name), Some(registry)) => {
            let (registry, name) = (registry.clone(), name.clone());
            sluice_host::io::wait(async move { registry.pipeline(&name).await })
                .context("reading the pipeline from the registry")?
        }
        _ => anyhow::bail!("give --pipeline FILE, or --name NAME with --registry URL"),
    };
    let mut config = args.broker.config()?;
    if let Some(id) = &args.instance_id {
        config = config.with("group.instance.id", id);
    }
    // A pinned version stays; otherwise the active one is followed.
    let mut followed = Followed::start(
        &transforms,
        &definition.transform,
        Duration::from_millis(args.reload_ms),
    )
    .with_context(|| {
        format!(
            "loading transform `{}` from {}",
            definition.transform.name(),
            transforms.describe()
        )
    })?;
    let transform = followed.transform().clone();
    let written = definition.outputs.iter().chain([&definition.dead_letter]);
    if args.create_topics {
        for topic in written {
            create_topic(&config, topic, args.partitions, args.replication_factor)?;
        }
    } else {
        require_topics(&config, written.map(String::as_str))
            .with_context(|| format!("pipeline `{}`", definition.name))?;
    }
    if let Some(addr) = args.metrics_addr {
        crate::metrics::serve(addr)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(stop.clone())?;
    let mut enricher = Enricher::new(definition.clone(), &transform)?;
    let every = Duration::from_secs(args.progress_every.max(1));
    let mut last_report = Instant::now();
    // With a registry, the worker says it is alive there, for the
    // topology page.
    let heartbeats = registry.as_ref().map(|registry| Heartbeats {
        sink: registry.heartbeat_sink(),
        worker: args.instance_id.clone().unwrap_or_else(default_worker_name),
        every: Duration::from_millis(args.heartbeat_ms.max(100)),
    });
    let options = WorkerOptions {
        heartbeats,
        ..WorkerOptions::default()
    };
    let total = run_worker(&config, &mut enricher, options, &stop, |enricher, total| {
        if let Some(next) = followed.update()
            && let Err(error) = enricher.swap_transform(&next)
        {
            tracing::error!(%error, "cannot switch to the new version; keeping the current one");
        }
        if last_report.elapsed() >= every {
            last_report = Instant::now();
            tracing::info!(
                pipeline = enricher.definition().name,
                read = total.read,
                produced = total.produced,
                dead_lettered = total.dead_lettered,
                waiting = enricher.pending(),
                "progress"
            );
        }
    })
    .with_context(|| format!("pipeline `{}`", definition.name))?;
    println!(
        "pipeline {}: read {}, produced {}, dropped {}, dead-lettered {}, joined {}, incomplete {}",
        definition.name,
        total.read,
        total.produced,
        total.dropped,
        total.dead_lettered,
        total.joined,
        total.incomplete
    );
    Ok(ExitCode::SUCCESS)
}

/// Sets `stop` on SIGTERM (what Kubernetes, systemd and the Functions host
/// send) or SIGINT.
fn stop_on_signals(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    sluice_host::io::handle().spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot listen for SIGTERM/SIGINT; stop the worker with SIGKILL");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing the current step"),
            _ = int.recv() => tracing::info!("SIGINT: finishing the current step"),
        }
        stop.store(true, Ordering::SeqCst);
    });
    Ok(())
}
