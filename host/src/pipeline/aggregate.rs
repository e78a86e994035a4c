//! Feeds a whole topic, read to its end, to one aggregator window.

use super::PipelineError;
use crate::kafka::{BoundedReader, KafkaConfig};
use crate::record::OutputRecord;
use crate::runtime::{Aggregator, GuestError};

/// What a window over a whole topic gave.
#[derive(Debug)]
pub struct Aggregated {
    /// Records read.
    pub read: u64,
    /// The aggregator's result.
    pub records: Vec<OutputRecord>,
    /// Records the aggregator failed on, each left out of the window.
    pub refused: Vec<GuestError>,
}

pub fn aggregate_topic(
    config: &KafkaConfig,
    mut aggregator: Aggregator,
    input: &str,
    batch_size: usize,
) -> Result<Aggregated, PipelineError> {
    let mut reader = BoundedReader::from_earliest(config, input)?;
    let mut read = 0u64;
    let mut refused = Vec::new();
    while let Some(batch) = reader.next_batch(batch_size.max(1))? {
        read += batch.len() as u64;
        refused.extend(aggregator.add(&batch)?);
    }
    Ok(Aggregated {
        read,
        records: aggregator.finish()?,
        refused,
    })
}
