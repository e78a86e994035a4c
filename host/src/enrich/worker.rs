//! The long-running consumer-group worker: poll, enrich, produce, then let
//! the finished offsets be committed once the acknowledgements are in. One
//! batch is in flight while the next is polled and enriched, so the broker's
//! round trip overlaps the work instead of adding to it. Scale out by
//! starting more workers with the same pipeline (same group).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::EnrichError;
use super::definition::{DefinitionError, PipelineDefinition, StartFrom};
use super::enricher::{EnrichStats, Enricher, Step};
use crate::health::{Heartbeat, Heartbeats, now_ms};
use crate::kafka::{
    CommitMode, GroupConsumer, GroupStart, InFlight, KafkaConfig, KafkaError, Producer,
};

/// How often the consumer lag is measured (two broker round trips per
/// partition): often enough for a dashboard, rarely enough to cost nothing.
const LAG_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Longest a poll waits for the first record.
    pub poll_wait: Duration,
    /// How often finished offsets are committed while running; zero commits
    /// after every step, so a crash repeats at most the records in flight.
    pub commit_interval: Duration,
    /// Where the worker says it is alive and how it is doing, if anywhere.
    pub heartbeats: Option<Heartbeats>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            poll_wait: Duration::from_millis(200),
            commit_interval: Duration::ZERO,
            heartbeats: None,
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
    check_budget(config, &definition)?;
    check_join_assignment(config, &definition)?;
    let producer = Producer::new(config)?;
    let mut consumer = GroupConsumer::subscribe(config, &group, &definition.inputs, start)?;
    if definition.join.is_some() {
        // A join's members are judged by their input's event time, shared
        // by every partition: after a rebalance they are all read again
        // together, as an eager rebalance would have it.
        consumer.rewind_on_rebalance();
    }
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
    // The step sent last, whose input records are finished once its
    // acknowledgements are in (or what the broker refused is settled).
    let mut in_flight: Option<(InFlight, Step, spans::Produce)> = None;
    // The first lag is measured at once, so a scrape soon after start sees it.
    let mut last_lag = Instant::now() - LAG_EVERY;
    let mut pulse = Pulse::new(options.heartbeats.clone());
    while !stop.load(Ordering::SeqCst) {
        let wait = enricher
            .next_deadline()
            .map_or(options.poll_wait, |deadline| {
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(options.poll_wait)
            });
        // Records the last step's budget left untried are work at hand: no
        // waiting, and fewer new records, so a step stays one batch.
        let carried = enricher.carried();
        let wait = if carried > 0 { Duration::ZERO } else { wait };
        let polled = consumer.poll(definition.batch_size.saturating_sub(carried).max(1), wait);
        if let Some(forgotten) = &polled.forgotten {
            // Waiting join members and carried records were not committed;
            // whoever owns their partitions now reads them again.
            enricher.forget(forgotten);
        }
        let began = SystemTime::now();
        let step = enricher.process(polled.records, Instant::now());
        let batch = spans::step(&definition.name, &step, began);
        // The earlier batch is acknowledged before this one is handed to
        // the producer, not after. An idempotent producer sends at most five
        // requests per partition before answers come; records queued past
        // that make librdkafka's broker thread wake at once, again and
        // again, until an answer arrives. With the next batch handed over
        // early, that spinning was 85% of the worker's CPU (perf, against
        // tansu, whose answers are slow); this order cut the worker's CPU
        // per record 5.7x. The guest work of this step still overlapped the
        // earlier batch's round trip.
        if let Some((earlier, sent, produced)) = in_flight.take() {
            settle(&producer, enricher, earlier, &sent, &mut total)?;
            consumer.finished(&sent.finished);
            produced.end();
        }
        let sent_at = SystemTime::now();
        let sending = producer.send(&step.produce)?;
        total.add(&step.stats);
        crate::metrics::records(
            &definition.name,
            enricher.transform().short_version(),
            step.stats.counts(),
        );
        in_flight = Some((sending, step, spans::Produce::new(batch, sent_at)));
        crate::metrics::join_waiting(
            &definition.name,
            enricher.pending(),
            enricher.pending_bytes(),
        );
        if last_lag.elapsed() >= LAG_EVERY {
            let lags = consumer.lag(Duration::from_secs(1));
            for (topic, partition, lag) in &lags {
                crate::metrics::consumer_lag(&definition.name, topic, *partition, *lag);
            }
            if !lags.is_empty() {
                pulse.lag = Some(lags.iter().map(|(_, _, lag)| lag).sum());
            }
            last_lag = Instant::now();
        }
        pulse.beat(enricher, &total, false);
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
    if let Some((last, sent, produced)) = in_flight.take() {
        settle(&producer, enricher, last, &sent, &mut total)?;
        consumer.finished(&sent.finished);
        produced.end();
    }
    let committed = consumer.commit(CommitMode::Sync)?;
    pulse.beat(enricher, &total, true);
    tracing::info!(
        pipeline = definition.name,
        read = total.read,
        produced = total.produced,
        dead_lettered = total.dead_lettered,
        waiting = enricher.pending(),
        carried = enricher.carried(),
        unfinished = consumer.unfinished(),
        partitions_committed = committed,
        "worker stopped"
    );
    Ok(total)
}

/// Waits for a step's acknowledgements; outputs the broker refused for good
/// are dead-lettered instead (and counted so), the step's inputs then
/// count as finished.
fn settle(
    producer: &Producer,
    enricher: &Enricher,
    sent: InFlight,
    step: &Step,
    total: &mut EnrichStats,
) -> Result<(), EnrichError> {
    let dead_lettered = enricher.settle(producer, sent, step)?;
    if dead_lettered > 0 {
        let moved = EnrichStats {
            dead_lettered,
            ..EnrichStats::default()
        };
        crate::metrics::records(
            &enricher.definition().name,
            enricher.transform().short_version(),
            moved.counts(),
        );
        total.dead_lettered += dead_lettered;
        total.produced = total.produced.saturating_sub(dead_lettered);
    }
    Ok(())
}

/// Refuses a budget with which a step could outlast `max.poll.interval.ms`:
/// the group would put the worker out and give its partitions to another,
/// again and again.
fn check_budget(config: &KafkaConfig, definition: &PipelineDefinition) -> Result<(), EnrichError> {
    const KEY: &str = "max.poll.interval.ms";
    let interval = config
        .properties
        .get(KEY)
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(300), Duration::from_millis);
    let limits = &definition.limits;
    let step = limits.budget() + limits.limits().deadline;
    if step < interval {
        return Ok(());
    }
    Err(EnrichError::Definition(DefinitionError {
        entry: None,
        pipeline: Some(definition.name.clone()),
        field: "limits.budget_ms".into(),
        reason: format!(
            "a batch may take the budget plus one deadline, {} ms, which is not less than \
             the consumer's {KEY} ({} ms): lower limits.budget_ms or raise {KEY}",
            step.as_millis(),
            interval.as_millis()
        ),
    }))
}

/// Refuses an assignment that would split a join across workers: each id's
/// records must reach one worker, so the group must give partition `i` of
/// every input to the same member. `range` does: the classic protocol's
/// default (`range,roundrobin` picks it), and the broker's `range` assignor
/// under `group.protocol=consumer`. `roundrobin`, `cooperative-sticky` and
/// the broker's `uniform` do not: every worker would wait for members that
/// went to another and give the id up.
fn check_join_assignment(
    config: &KafkaConfig,
    definition: &PipelineDefinition,
) -> Result<(), KafkaError> {
    if definition.join.is_none() {
        return Ok(());
    }
    let get = |key: &str| config.properties.get(key).map(String::as_str);
    let (key, value, chosen) = if get("group.protocol") == Some("consumer") {
        let assignor = get("group.remote.assignor");
        (
            "group.remote.assignor",
            assignor.unwrap_or("unset (the broker's default, uniform)"),
            assignor,
        )
    } else {
        let strategies = get("partition.assignment.strategy").unwrap_or("range,roundrobin");
        let first = strategies.split(',').map(str::trim).next();
        ("partition.assignment.strategy", strategies, first)
    };
    if chosen == Some("range") {
        return Ok(());
    }
    Err(KafkaError::Unsupported {
        setting: format!("{key}={value}"),
        reason: format!(
            "pipeline `{}` joins its inputs by id, so partition i of every input must go to \
             the same worker, which only the range assignor does: set {key}=range",
            definition.name
        ),
    })
}

/// A worker's heartbeats: every so often, and a last one when it stops.
struct Pulse {
    heartbeats: Option<Heartbeats>,
    started_ms: i64,
    last: Option<(Instant, u64)>,
    /// The consumer lag last measured.
    lag: Option<i64>,
}

impl Pulse {
    fn new(heartbeats: Option<Heartbeats>) -> Self {
        Pulse {
            heartbeats,
            started_ms: now_ms(),
            last: None,
            lag: None,
        }
    }

    fn beat(&mut self, enricher: &Enricher, total: &EnrichStats, stopped: bool) {
        let Some(heartbeats) = &self.heartbeats else {
            return;
        };
        let now = Instant::now();
        let rate = match self.last {
            Some((at, _)) if !stopped && now.duration_since(at) < heartbeats.every => return,
            Some((at, read)) => {
                let seconds = now.duration_since(at).as_secs_f64();
                if seconds > 0.0 {
                    (total.read.saturating_sub(read) as f64 / seconds) as u64
                } else {
                    0
                }
            }
            None => 0,
        };
        self.last = Some((now, total.read));
        let beat = Heartbeat {
            pipeline: enricher.definition().name.clone(),
            worker: heartbeats.worker.clone(),
            transform_version: enricher.transform().short_version().to_owned(),
            started_ms: self.started_ms,
            at_ms: now_ms(),
            every_ms: u64::try_from(heartbeats.every.as_millis()).unwrap_or(u64::MAX),
            read: total.read,
            produced: total.produced,
            dead_lettered: total.dead_lettered,
            dropped: total.dropped,
            rate,
            lag: self.lag,
            stopped,
        };
        if stopped {
            heartbeats.sink.last(beat);
        } else {
            heartbeats.sink.beat(beat);
        }
    }
}

/// The spans of a worker's steps, for a tracing backend when one is
/// configured: one per step with records, a guest call and a produce below.
mod spans {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::SystemTime;

    use opentelemetry::KeyValue;
    use opentelemetry::trace::SpanKind;

    use crate::enrich::Step;
    use crate::pipeline::TraceContext;
    use crate::telemetry::{self, Span};

    static STEPS: AtomicU64 = AtomicU64::new(0);

    /// Records the step's span and its guest call's; the step's context,
    /// for the produce below it.
    pub fn step(pipeline: &str, step: &Step, began: SystemTime) -> Option<TraceContext> {
        if !telemetry::enabled() || step.stats.read == 0 {
            return None;
        }
        let n = STEPS.fetch_add(1, Ordering::Relaxed);
        let nanos = began
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let context = TraceContext::derive(None, &format!("{pipeline}\n{nanos}\n{n}"));
        let end = SystemTime::now();
        let guest = TraceContext::derive(Some(context), "guest");
        telemetry::record(Span {
            name: "guest call".into(),
            context: guest,
            parent: Some(context),
            kind: SpanKind::Internal,
            start: end.checked_sub(step.guest).unwrap_or(began),
            end,
            attributes: Vec::new(),
            error: None,
        });
        telemetry::record(Span {
            name: format!("enrich {pipeline}"),
            context,
            parent: None,
            kind: SpanKind::Consumer,
            start: began,
            end,
            attributes: vec![
                KeyValue::new("sluice.records.read", step.stats.read as i64),
                KeyValue::new("sluice.records.produced", step.stats.produced as i64),
                KeyValue::new(
                    "sluice.records.dead_lettered",
                    step.stats.dead_lettered as i64,
                ),
            ],
            error: None,
        });
        Some(context)
    }

    /// A produce of a step's records, from sending to the last
    /// acknowledgement.
    pub struct Produce {
        step: Option<TraceContext>,
        sent: SystemTime,
    }

    impl Produce {
        pub fn new(step: Option<TraceContext>, sent: SystemTime) -> Self {
            Produce { step, sent }
        }

        pub fn end(self) {
            let Some(step) = self.step else {
                return;
            };
            telemetry::record(Span {
                name: "produce".into(),
                context: TraceContext::derive(Some(step), "produce"),
                parent: Some(step),
                kind: SpanKind::Producer,
                start: self.sent,
                end: SystemTime::now(),
                attributes: Vec::new(),
                error: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline(join: bool, limits: serde_json::Value) -> PipelineDefinition {
        let mut value = json!({
            "name": "p", "inputs": ["a", "b"], "outputs": ["out"],
            "transform": "t", "dead_letter": "dlq", "limits": limits,
        });
        if join {
            value["join"] = json!({"key": "id", "timeout_ms": 1000});
        }
        PipelineDefinition::from_value(&value).unwrap()
    }

    #[test]
    fn a_join_needs_an_assignor_that_keeps_each_partition_number_on_one_worker() {
        let joined = pipeline(true, json!({}));
        let allowed = [
            vec![],
            vec![("partition.assignment.strategy", "range")],
            vec![("partition.assignment.strategy", "range, roundrobin")],
            vec![
                ("group.protocol", "consumer"),
                ("group.remote.assignor", "range"),
            ],
        ];
        for properties in allowed {
            let config = properties
                .iter()
                .fold(KafkaConfig::new("k:9092"), |c, (k, v)| c.with(k, v));
            assert!(
                check_join_assignment(&config, &joined).is_ok(),
                "{properties:?}"
            );
        }
        let refused = [
            (
                vec![("partition.assignment.strategy", "cooperative-sticky")],
                "partition.assignment.strategy=cooperative-sticky",
            ),
            (
                vec![("partition.assignment.strategy", "roundrobin,range")],
                "partition.assignment.strategy=roundrobin,range",
            ),
            (
                vec![("group.protocol", "consumer")],
                "group.remote.assignor=unset",
            ),
            (
                vec![
                    ("group.protocol", "consumer"),
                    ("group.remote.assignor", "uniform"),
                ],
                "group.remote.assignor=uniform",
            ),
        ];
        for (properties, named) in refused {
            let config = properties
                .iter()
                .fold(KafkaConfig::new("k:9092"), |c, (k, v)| c.with(k, v));
            let error = check_join_assignment(&config, &joined)
                .unwrap_err()
                .to_string();
            assert!(error.contains(named) && error.contains("range"), "{error}");
            let unjoined = pipeline(false, json!({}));
            assert!(
                check_join_assignment(&config, &unjoined).is_ok(),
                "without a join any assignor will do: {properties:?}"
            );
        }
    }

    #[test]
    fn a_budget_a_step_could_outlast_max_poll_interval_with_is_refused() {
        let config = KafkaConfig::new("k:9092");
        let fits = pipeline(false, json!({"deadline_ms": 10_000, "budget_ms": 280_000}));
        assert!(check_budget(&config, &fits).is_ok());
        let long = pipeline(false, json!({"deadline_ms": 10_000, "budget_ms": 290_000}));
        let error = check_budget(&config, &long).unwrap_err().to_string();
        assert!(
            error.contains("limits.budget_ms")
                && error.contains("max.poll.interval.ms (300000 ms)"),
            "{error}"
        );
        let raised = config.with("max.poll.interval.ms", "600000");
        assert!(check_budget(&raised, &long).is_ok());
    }
}
