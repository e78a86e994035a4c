//! A reader that always ends: it takes each partition's high watermark when
//! it opens and stops once every partition has been read up to it, so a
//! topic that keeps growing cannot keep a run going forever.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::config::KafkaConfig;
use super::consumer::bounded_consumer;
use super::convert::to_record;
use super::error::KafkaError;
use super::logs::Logged;
use super::metadata::PartitionRange;
use super::read_plan::ReadPlan;
use crate::record::KafkaRecord;

/// The longest one poll waits for a record.
const POLL_WAIT: Duration = Duration::from_millis(100);

pub struct BoundedReader {
    topic: String,
    consumer: BaseConsumer<Logged>,
    /// Partitions not yet read to their end, by partition id.
    group_id: String,
    pending: BTreeMap<i32, PartitionRange>,
    ranges: Vec<PartitionRange>,
    idle_timeout: Duration,
}

impl BoundedReader {
    /// Opens `topic` from the earliest available offset of each partition.
    pub fn from_earliest(config: &KafkaConfig, topic: &str) -> Result<Self, KafkaError> {
        Self::open(config, &ReadPlan::earliest(topic))
    }

    /// Opens the ranges `plan` resolves to on the broker now.
    pub fn open(config: &KafkaConfig, plan: &ReadPlan) -> Result<Self, KafkaError> {
        Self::open_with(config, plan, Ok::<_, KafkaError>)
    }

    /// Opens the ranges `plan` resolves to, as `adjust` changes them: a
    /// sink that knows better what it still needs (what it already stored)
    /// moves the starts and ends; each range's watermarks are in it.
    pub fn open_with<E: From<KafkaError>>(
        config: &KafkaConfig,
        plan: &ReadPlan,
        adjust: impl FnOnce(Vec<PartitionRange>) -> Result<Vec<PartitionRange>, E>,
    ) -> Result<Self, E> {
        let consumer = bounded_consumer(config, &plan.group_id)?;
        let ranges = adjust(plan.ranges(&consumer, config)?)?;
        Ok(Self::assigned(consumer, ranges, plan)?)
    }

    /// A reader of `ranges` (resolved from `plan`) on a consumer made by
    /// [`bounded_consumer`] for the plan's group.
    pub(super) fn assigned(
        consumer: BaseConsumer<Logged>,
        ranges: Vec<PartitionRange>,
        plan: &ReadPlan,
    ) -> Result<Self, KafkaError> {
        let topic = plan.topic.as_str();
        let mut assignment = TopicPartitionList::new();
        for range in ranges.iter().filter(|r| r.start < r.end) {
            assignment
                .add_partition_offset(topic, range.partition, Offset::Offset(range.start))
                .map_err(|source| KafkaError::Read {
                    topic: topic.to_owned(),
                    partition: range.partition,
                    source,
                })?;
        }
        consumer
            .assign(&assignment)
            .map_err(|source| KafkaError::Metadata {
                topic: topic.to_owned(),
                source,
            })?;
        tracing::info!(
            topic,
            group = plan.group_id,
            partitions = ranges.len(),
            records = ranges.iter().map(|r| r.end - r.start).sum::<i64>(),
            "reader opened"
        );
        Ok(BoundedReader {
            topic: topic.to_owned(),
            group_id: plan.group_id.clone(),
            consumer,
            pending: ranges
                .iter()
                .filter(|r| r.start < r.end)
                .map(|r| (r.partition, *r))
                .collect(),
            ranges,
            idle_timeout: Duration::from_secs(30),
        })
    }

    /// Commits, for the plan's group, that every record before each given
    /// offset is done: `(partition, next offset to read)`. Call it only once
    /// what was read is safely written.
    pub fn commit(&self, next_offsets: &[(i32, i64)]) -> Result<(), KafkaError> {
        let commit_error = |source| KafkaError::Commit {
            topic: self.topic.clone(),
            group: self.group_id.clone(),
            source: Box::new(source),
        };
        let mut list = TopicPartitionList::new();
        for (partition, offset) in next_offsets {
            list.add_partition_offset(&self.topic, *partition, Offset::Offset(*offset))
                .map_err(commit_error)?;
        }
        self.consumer
            .commit(&list, CommitMode::Sync)
            .map_err(commit_error)
    }

    /// The consumer, with nothing assigned any more, for another read.
    pub(super) fn into_consumer(self) -> Result<BaseConsumer<Logged>, KafkaError> {
        self.consumer
            .unassign()
            .map_err(|source| KafkaError::Metadata {
                topic: self.topic.clone(),
                source,
            })?;
        Ok(self.consumer)
    }

    /// What this reader covers, one range per partition.
    pub fn ranges(&self) -> &[PartitionRange] {
        &self.ranges
    }

    /// Partitions not yet read to their end.
    pub fn unfinished(&self) -> impl Iterator<Item = i32> + '_ {
        self.pending.keys().copied()
    }

    /// Up to `max` records, or `None` once every partition is read to its end.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Vec<KafkaRecord>>, KafkaError> {
        self.next_batch_until(max, None)
    }

    /// As [`BoundedReader::next_batch`], but the batch ends (short, or
    /// empty) once `deadline` passes: no poll waits past it, so a broker
    /// slow to answer holds the caller no longer than one poll beyond it.
    pub fn next_batch_until(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<KafkaRecord>>, KafkaError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let mut batch = Vec::with_capacity(max.min(10_000));
        let mut last_record = Instant::now();
        while batch.len() < max && !self.pending.is_empty() {
            let wait = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(POLL_WAIT),
                    _ => break,
                },
                None => POLL_WAIT,
            };
            let Some(result) = self.consumer.poll(wait) else {
                if !batch.is_empty() {
                    break;
                }
                if last_record.elapsed() > self.idle_timeout {
                    return Err(self.stalled());
                }
                continue;
            };
            let message = match result {
                Ok(message) => message,
                Err(rdkafka::error::KafkaError::PartitionEOF(partition)) => {
                    self.pending.remove(&partition);
                    continue;
                }
                Err(source) => {
                    return Err(KafkaError::Read {
                        topic: self.topic.clone(),
                        partition: -1,
                        source,
                    });
                }
            };
            last_record = Instant::now();
            let record = to_record(&message);
            // A consumer used for an earlier read may still hand out what it
            // fetched then.
            let Some(&range) = self.pending.get(&record.partition) else {
                continue;
            };
            if record.topic != self.topic || record.offset < range.start {
                continue;
            }
            // Offsets can have gaps (compaction, transaction markers), so a
            // partition is done at the first offset at or past its end.
            if record.offset + 1 >= range.end {
                self.pending.remove(&record.partition);
            }
            if record.offset < range.end {
                batch.push(record);
            }
        }
        Ok(Some(batch))
    }

    fn stalled(&self) -> KafkaError {
        KafkaError::Stalled {
            topic: self.topic.clone(),
            idle: self.idle_timeout,
            pending: self
                .pending
                .values()
                .map(|r| format!("{} (end {})", r.partition, r.end))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}
