//! Feeds a whole topic, read to its end, to one aggregator window.

use super::PipelineError;
use crate::kafka::{BoundedReader, KafkaConfig};
use crate::record::OutputRecord;
use crate::runtime::Aggregator;

pub fn aggregate_topic(
    config: &KafkaConfig,
    mut aggregator: Aggregator,
    input: &str,
    batch_size: usize,
) -> Result<(u64, Vec<OutputRecord>), PipelineError> {
    let mut reader = BoundedReader::from_earliest(config, input)?;
    let mut read = 0u64;
    while let Some(batch) = reader.next_batch(batch_size.max(1))? {
        read += batch.len() as u64;
        aggregator.add(&batch)?;
    }
    Ok((read, aggregator.finish()?))
}
