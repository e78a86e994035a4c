//! What the cluster says about a topic: its partitions and each one's
//! watermarks, the range of offsets a read covers, and Kafka's rule for
//! topic names.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::logs::Logged;

use super::config::KafkaConfig;
use super::error::KafkaError;

/// The offsets of one partition a reader covers: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    pub partition: i32,
    pub start: i64,
    /// Exclusive: at most the high watermark seen when the reader opened.
    pub end: i64,
    /// The partition's first stored offset and high watermark then.
    pub low: i64,
    pub high: i64,
}

/// The partition ids of `topic`, or an error naming it when it is unknown.
pub(super) fn partitions(
    consumer: &BaseConsumer<Logged>,
    config: &KafkaConfig,
    topic: &str,
) -> Result<Vec<i32>, KafkaError> {
    check_topic_name(topic)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), config.request_timeout)
        .map_err(|source| KafkaError::Metadata {
            topic: topic.to_owned(),
            source,
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(KafkaError::UnknownTopic {
            topic: topic.to_owned(),
            brokers: config.bootstrap_servers.clone(),
        });
    }
    Ok(partitions)
}

/// `(low, high)`: the first offset still stored and the next one to be written.
pub(super) fn watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    timeout: Duration,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), KafkaError> {
    consumer
        .fetch_watermarks(topic, partition, timeout)
        .map_err(|source| KafkaError::Read {
            topic: topic.to_owned(),
            partition,
            source,
        })
}

/// `(low, high)` of each of `partitions` of `topic`, in two ListOffsets
/// requests for them all (the earliest, then the latest offsets) instead of
/// two round trips per partition: a 64-partition topic's read plan waited
/// on 128. A partition the answer leaves without an offset is asked alone.
pub(super) fn all_watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    timeout: Duration,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, (i64, i64)>, KafkaError> {
    let wanted: Vec<(&str, i32)> = partitions.iter().map(|p| (topic, *p)).collect();
    Ok(watermarks_of(consumer, timeout, &wanted)?
        .into_iter()
        .map(|((_, partition), marks)| (partition, marks))
        .collect())
}

/// `(low, high)` by `(topic, partition)`.
pub(super) type Watermarks = BTreeMap<(String, i32), (i64, i64)>;

/// `(low, high)` of each `(topic, partition)`, of any number of topics, in
/// the same two ListOffsets requests (librdkafka sends one per leader).
pub(super) fn watermarks_of<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    timeout: Duration,
    partitions: &[(&str, i32)],
) -> Result<Watermarks, KafkaError> {
    let metadata_error = |source| KafkaError::Metadata {
        topic: partitions
            .first()
            .map_or_else(String::new, |(t, _)| (*t).to_owned()),
        source,
    };
    // ListOffsets takes a time per partition; -2 and -1 (what
    // `Offset::Beginning` and `Offset::End` are) mean the earliest and the
    // latest offset.
    let ask = |at: Offset| -> Result<BTreeMap<(String, i32), i64>, KafkaError> {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in partitions {
            list.add_partition_offset(topic, *partition, at)
                .map_err(metadata_error)?;
        }
        let answer = consumer
            .offsets_for_times(list, timeout)
            .map_err(metadata_error)?;
        Ok(answer
            .elements()
            .iter()
            .filter(|e| e.error().is_ok())
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some(((e.topic().to_owned(), e.partition()), offset)),
                _ => None,
            })
            .collect())
    };
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let (lows, highs) = (ask(Offset::Beginning)?, ask(Offset::End)?);
    partitions
        .iter()
        .map(|&(topic, partition)| {
            let at = (topic.to_owned(), partition);
            let marks = match (lows.get(&at), highs.get(&at)) {
                (Some(&low), Some(&high)) if low <= high => (low, high),
                _ => watermarks(consumer, timeout, topic, partition)?,
            };
            #[cfg(feature = "failpoints")]
            let marks = crate::crash::watermarks_after_deletes(topic, partition, marks);
            Ok((at, marks))
        })
        .collect()
}

/// The next offset of each partition of each of `topics` that exists, by
/// partition: one metadata request for them all, then the watermarks. A
/// topic the broker does not know is left out.
pub fn end_offsets(
    config: &KafkaConfig,
    topics: &[String],
) -> Result<BTreeMap<String, Vec<i64>>, KafkaError> {
    let consumer = super::consumer::bounded_consumer(config, "sluice-end-offsets")?;
    let metadata = consumer
        .fetch_metadata(None, config.request_timeout)
        .map_err(|source| KafkaError::Metadata {
            topic: topics.join(","),
            source,
        })?;
    let mut offsets = BTreeMap::new();
    for topic in metadata.topics() {
        if topic.error().is_some() || !topics.iter().any(|t| t == topic.name()) {
            continue;
        }
        let mut partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        let marks = all_watermarks(&consumer, config.request_timeout, topic.name(), &partitions)?;
        let ends = marks.values().map(|&(_, high)| high).collect();
        offsets.insert(topic.name().to_owned(), ends);
    }
    Ok(offsets)
}

/// Kafka's rule for topic names: 1 to 249 of `a-z A-Z 0-9 . _ -`, and not
/// `.` or `..`. Checked before a name reaches the broker, so a request
/// naming something else is told so instead of getting a broker error.
pub fn check_topic_name(topic: &str) -> Result<(), KafkaError> {
    let valid = (1..=249).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && topic != "."
        && topic != "..";
    if valid {
        Ok(())
    } else {
        Err(KafkaError::BadTopicName {
            topic: topic.chars().take(80).collect(),
        })
    }
}
