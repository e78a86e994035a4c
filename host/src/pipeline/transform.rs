//! Reads a topic to its end, runs a transformer over it batch by batch and
//! produces what it routes; each batch is acknowledged before the next.

use super::PipelineError;
use super::route::{Routed, Routing};
use crate::kafka::{BoundedReader, KafkaConfig, Producer};
use crate::retry::Backoff;
use crate::runtime::Transformer;

/// One bounded run of a transformer over a topic.
#[derive(Debug, Clone)]
pub struct TopicRun {
    pub input: String,
    pub routing: Routing,
    /// Records per guest call.
    pub batch_size: usize,
}

/// Counts of what happened to the input records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    pub read: u64,
    /// Input records that emitted at least one record.
    pub emitted: u64,
    /// Records produced to output topics.
    pub produced: u64,
    pub dropped: u64,
    pub dead_lettered: u64,
}

pub fn transform_topic(
    config: &KafkaConfig,
    transformer: &mut Transformer,
    run: &TopicRun,
    mut progress: impl FnMut(&RunStats),
) -> Result<RunStats, PipelineError> {
    let mut reader = BoundedReader::from_earliest(config, &run.input)?;
    let producer = Producer::new(config)?;
    let mut stats = RunStats::default();
    let mut out = Vec::new();
    // `(end, input)`: the records of `out` before `end` (after the previous
    // entry's) came from `batch[input]`.
    let mut origins: Vec<(usize, usize)> = Vec::new();
    while let Some(batch) = reader.next_batch(run.batch_size.max(1))? {
        let results = transformer.process(&batch);
        out.clear();
        origins.clear();
        for (index, (input, result)) in batch.iter().zip(results).enumerate() {
            stats.read += 1;
            match run
                .routing
                .route(transformer.transform(), input, result, &mut out)
            {
                Routed::Emitted(n) => {
                    stats.emitted += 1;
                    stats.produced += n as u64;
                }
                Routed::Dropped => stats.dropped += 1,
                Routed::DeadLettered => stats.dead_lettered += 1,
            }
            origins.push((out.len(), index));
        }
        let refused = producer.send(&out)?.refused();
        if !refused.is_empty() {
            let source_of = |at: usize| {
                let span = origins.partition_point(|(end, _)| *end <= at);
                let (_, input) = origins.get(span)?;
                batch.get(*input).map(|r| r.locator())
            };
            let moved = super::deliver::settle(
                &producer,
                refused,
                &out,
                &run.routing,
                transformer.transform(),
                &source_of,
                Backoff::NETWORK,
            )?;
            stats.dead_lettered += moved;
            stats.produced = stats.produced.saturating_sub(moved);
        }
        progress(&stats);
    }
    tracing::info!(
        input = run.input,
        read = stats.read,
        produced = stats.produced,
        dropped = stats.dropped,
        dead_lettered = stats.dead_lettered,
        "transform run finished"
    );
    Ok(stats)
}
