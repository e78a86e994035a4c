//! Which offsets a bounded read covers, with the exporter's `topics.json`
//! semantics: explicit start offsets for named partitions, a reset to the
//! earliest offsets, or the group's committed offsets; at most
//! `num_messages` per partition; never past the high watermark seen at start.
//!
//! The cap is per partition, not per topic as in the exporter's Python: a
//! per-topic cap would take whichever partitions answered first, so a
//! re-run could read different records and write different files.

use std::collections::BTreeMap;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::logs::Logged;
use rdkafka::{Offset, TopicPartitionList};

use super::config::KafkaConfig;
use super::error::KafkaError;
use super::metadata::{self, PartitionRange};

/// Where each partition's read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The earliest offset still in the partition.
    Earliest,
    /// The group's committed offset; the earliest where none is committed,
    /// so an export never skips records it has not written.
    Committed,
    /// These partitions only, from these offsets.
    Offsets(BTreeMap<i32, i64>),
    /// From the first record at or after `millis` (Unix epoch, UTC) in these
    /// partitions (all when empty).
    Timestamp { partitions: Vec<i32>, millis: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    pub topic: String,
    pub group_id: String,
    pub start: Start,
    /// Most records per partition.
    pub max_per_partition: Option<u64>,
    /// Added to offsets written out (the topics.json `offset_increment`).
    pub offset_increment: BTreeMap<i32, i64>,
}

impl ReadPlan {
    /// A whole topic from its earliest offsets, committing nowhere.
    pub fn earliest(topic: &str) -> Self {
        ReadPlan {
            topic: topic.to_owned(),
            group_id: "sluice-bounded-reader".to_owned(),
            start: Start::Earliest,
            max_per_partition: None,
            offset_increment: BTreeMap::new(),
        }
    }

    /// Where a read from `start` ends: the high watermark, or sooner when
    /// the plan caps the records per partition.
    pub fn capped_end(&self, start: i64, high: i64) -> i64 {
        let end = match self.max_per_partition {
            Some(max) => high.min(start.saturating_add(i64::try_from(max).unwrap_or(i64::MAX))),
            None => high,
        };
        end.max(start)
    }

    /// The offset written out for a record read at `offset`.
    /// Saturating: topics.json refuses increments that could overflow, and a
    /// plan built another way must not wrap an offset around either.
    pub fn adjusted_offset(&self, partition: i32, offset: i64) -> i64 {
        offset.saturating_add(self.offset_increment.get(&partition).copied().unwrap_or(0))
    }

    /// Resolves the plan against the broker: one range per partition read.
    pub(super) fn ranges(
        &self,
        consumer: &BaseConsumer<Logged>,
        config: &KafkaConfig,
    ) -> Result<Vec<PartitionRange>, KafkaError> {
        let topic = self.topic.as_str();
        let partitions = metadata::partitions(consumer, config, topic)?;
        let named: Vec<i32> = match &self.start {
            Start::Offsets(offsets) => offsets.keys().copied().collect(),
            Start::Timestamp { partitions, .. } => partitions.clone(),
            Start::Earliest | Start::Committed => Vec::new(),
        };
        if let Some(missing) = named.iter().find(|p| !partitions.contains(p)) {
            return Err(KafkaError::UnknownPartition {
                topic: topic.to_owned(),
                partition: *missing,
                partitions: partitions.len(),
            });
        }
        let wanted = if named.is_empty() { partitions } else { named };
        let found = match self.start {
            Start::Committed => self.committed(consumer, config, &wanted)?,
            Start::Timestamp { millis, .. } => self.at_time(consumer, config, &wanted, millis)?,
            _ => BTreeMap::new(),
        };
        metadata::all_watermarks(consumer, config.request_timeout, topic, &wanted)?
            .into_iter()
            .map(|(partition, (low, high))| {
                let start = match &self.start {
                    Start::Earliest => low,
                    Start::Committed => found.get(&partition).copied().unwrap_or(low).max(low),
                    // No record at or after the time: nothing to read.
                    Start::Timestamp { .. } => found
                        .get(&partition)
                        .copied()
                        .unwrap_or(high)
                        .clamp(low, high),
                    Start::Offsets(offsets) => {
                        let start = offsets.get(&partition).copied().unwrap_or(low);
                        if start < low || start > high {
                            return Err(KafkaError::OffsetOutOfRange {
                                topic: topic.to_owned(),
                                partition,
                                offset: start,
                                low,
                                high,
                            });
                        }
                        start
                    }
                };
                Ok(PartitionRange {
                    partition,
                    start,
                    end: self.capped_end(start, high),
                    low,
                    high,
                })
            })
            .collect()
    }

    /// The first offset at or after `millis` in each partition; partitions
    /// with no such record are left out.
    fn at_time(
        &self,
        consumer: &BaseConsumer<Logged>,
        config: &KafkaConfig,
        partitions: &[i32],
        millis: i64,
    ) -> Result<BTreeMap<i32, i64>, KafkaError> {
        // Kafka reads a negative time as "latest" (-1) or "earliest" (-2),
        // and librdkafka refuses other negative ones; a time before 1970 is
        // before every record, so it asks for the first at or after 0.
        let millis = millis.max(0);
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            list.add_partition_offset(&self.topic, *partition, Offset::Offset(millis))
                .map_err(|source| KafkaError::Metadata {
                    topic: self.topic.clone(),
                    source,
                })?;
        }
        let found = consumer
            .offsets_for_times(list, config.request_timeout)
            .map_err(|source| KafkaError::Metadata {
                topic: self.topic.clone(),
                source,
            })?;
        Ok(known_offsets(&found))
    }

    fn committed(
        &self,
        consumer: &BaseConsumer<Logged>,
        config: &KafkaConfig,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>, KafkaError> {
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            list.add_partition(&self.topic, *partition);
        }
        let committed = consumer
            .committed_offsets(list, config.request_timeout)
            .map_err(|source| KafkaError::Committed {
                topic: self.topic.clone(),
                group: self.group_id.clone(),
                source: Box::new(source),
            })?;
        Ok(known_offsets(&committed))
    }
}

/// The partitions of `list` with a concrete offset; the others (none
/// committed, no record at the time) are left out.
fn known_offsets(list: &TopicPartitionList) -> BTreeMap<i32, i64> {
    list.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some((e.partition(), offset)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjusted_offset_saturates_instead_of_wrapping() {
        let mut plan = ReadPlan::earliest("t");
        plan.offset_increment = BTreeMap::from([(0, 10), (1, i64::MAX), (2, i64::MIN)]);
        assert_eq!(plan.adjusted_offset(0, 5), 15);
        assert_eq!(plan.adjusted_offset(1, 5), i64::MAX);
        assert_eq!(plan.adjusted_offset(2, -5), i64::MIN);
        assert_eq!(
            plan.adjusted_offset(3, 5),
            5,
            "no increment for the partition"
        );
    }
}
