//! The long-running consumer-group worker: poll, enrich, produce, then let
//! the finished offsets be committed once the acknowledgements are in. One
//! batch is in flight while the next is polled and enriched, so the broker's
//! round trip overlaps the work instead of adding to it. Scale out by
//! starting more workers with the same pipeline (same group).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::EnrichError;
use super::definition::StartFrom;
use super::enricher::{EnrichStats, Enricher};
use crate::kafka::{CommitMode, GroupConsumer, GroupStart, InFlight, KafkaConfig, Producer};
use crate::record::RecordRef;

/// How often the consumer lag is measured (two broker round trips per
/// partition): often enough for a dashboard, rarely enough to cost nothing.
const LAG_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Longest a poll waits for the first record.
    pub poll_wait: Duration,
    /// How often finished offsets are committed while running; zero commits
    /// after every step, so a crash repeats at most the records in flight.
    pub commit_interval: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            poll_wait: Duration::from_millis(200),
            commit_interval: Duration::ZERO,
        }
    }
}

/// Runs until `stop` is set, then commits what is finished and returns the
/// totals. `between_steps` runs after every step, outside any batch: the
/// place to report progress or swap the transform.
pub fn run_worker(
    config: &KafkaConfig,
    enricher: &mut Enricher,
    options: WorkerOptions,
    stop: &AtomicBool,
    mut between_steps: impl FnMut(&mut Enricher, &EnrichStats),
) -> Result<EnrichStats, EnrichError> {
    let definition = enricher.definition().clone();
    let group = definition.group_id();
    let start = match definition.start {
        StartFrom::Earliest => GroupStart::Earliest,
        StartFrom::Latest => GroupStart::Latest,
    };
    let producer = Producer::new(config)?;
    let mut consumer = GroupConsumer::subscribe(config, &group, &definition.inputs, start)?;
    tracing::info!(
        pipeline = definition.name,
        group,
        inputs = definition.inputs.join(","),
        transform = enricher.transform().name(),
        version = enricher.transform().short_version(),
        "worker started"
    );
    let mut total = EnrichStats::default();
    let mut last_commit = Instant::now();
    // The batch sent last and the input records it finishes once its
    // acknowledgements are in.
    let mut in_flight: Option<(InFlight, Vec<RecordRef>)> = None;
    // The first lag is measured at once, so a scrape soon after start sees it.
    let mut last_lag = Instant::now() - LAG_EVERY;
    while !stop.load(Ordering::SeqCst) {
        let wait = enricher
            .next_deadline()
            .map_or(options.poll_wait, |deadline| {
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(options.poll_wait)
            });
        let polled = consumer.poll(definition.batch_size, wait);
        if polled.rebalanced {
            // Waiting join members were not committed; whoever owns their
            // partitions now reads them again.
            enricher.forget_pending();
        }
        let step = enricher.process(polled.records, Instant::now());
        let sent = producer.send(&step.produce)?;
        if let Some((earlier, finished)) = in_flight.take() {
            earlier.wait()?;
            consumer.finished(&finished);
        }
        in_flight = Some((sent, step.finished));
        total.add(&step.stats);
        crate::metrics::records(
            &definition.name,
            enricher.transform().short_version(),
            &step.stats,
        );
        crate::metrics::join_waiting(&definition.name, enricher.pending());
        if last_lag.elapsed() >= LAG_EVERY {
            for (topic, partition, lag) in consumer.lag(Duration::from_secs(1)) {
                crate::metrics::consumer_lag(&definition.name, &topic, partition, lag);
            }
            last_lag = Instant::now();
        }
        if last_commit.elapsed() >= options.commit_interval {
            // An asynchronous commit that fails (the group is rebalancing)
            // is retried by the next one; nothing is lost meanwhile.
            if let Err(error) = consumer.commit(CommitMode::Async) {
                tracing::warn!(group, %error, "commit failed; will retry");
            }
            last_commit = Instant::now();
        }
        between_steps(enricher, &total);
    }
    if let Some((last, finished)) = in_flight.take() {
        last.wait()?;
        consumer.finished(&finished);
    }
    let committed = consumer.commit(CommitMode::Sync)?;
    tracing::info!(
        pipeline = definition.name,
        read = total.read,
        produced = total.produced,
        dead_lettered = total.dead_lettered,
        waiting = enricher.pending(),
        unfinished = consumer.unfinished(),
        partitions_committed = committed,
        "worker stopped"
    );
    Ok(total)
}
