use std::time::Duration;

/// A Kafka operation failed; the message names the topic and partition.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot create a Kafka client for {brokers}: {source}")]
    Client {
        brokers: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(
        "`{topic}` is not a topic name: Kafka allows 1 to 249 of a-z, A-Z, 0-9, `.`, `_` and `-`"
    )]
    BadTopicName { topic: String },
    #[error("topic `{topic}` does not exist on {brokers}")]
    UnknownTopic { topic: String, brokers: String },
    #[error("reading metadata of topic `{topic}`: {source}")]
    Metadata {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("reading topic `{topic}` partition {partition}: {source}")]
    Read {
        topic: String,
        partition: i32,
        source: rdkafka::error::KafkaError,
    },
    #[error(
        "reading topic `{topic}`: no record for {idle:?} while partitions {pending} still had records up to their end offsets"
    )]
    Stalled {
        topic: String,
        idle: Duration,
        pending: String,
    },
    #[error("producing to topic `{topic}`: {source}")]
    Produce {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("topic `{topic}` has no partition {partition} (it has {partitions})")]
    UnknownPartition {
        topic: String,
        partition: i32,
        partitions: usize,
    },
    #[error(
        "topic `{topic}` partition {partition}: offset {offset} is outside the available range {low}..{high}"
    )]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        offset: i64,
        low: i64,
        high: i64,
    },
    #[error("reading the offsets group `{group}` committed on topic `{topic}`: {source}")]
    Committed {
        topic: String,
        group: String,
        source: Box<rdkafka::error::KafkaError>,
    },
    #[error("committing offsets of group `{group}` on topic `{topic}`: {source}")]
    Commit {
        topic: String,
        group: String,
        source: Box<rdkafka::error::KafkaError>,
    },
    #[error("consumer group `{group}` on topics {topics}: {source}")]
    Consume {
        group: String,
        topics: String,
        source: Box<rdkafka::error::KafkaError>,
    },
    #[error("{setting}: {reason}")]
    Unsupported { setting: String, reason: String },
    #[error(
        "topic `{topic}` does not exist on {brokers}: create it (with the partitions and replication \
         your cluster needs), or let the worker create it with --create-topics"
    )]
    MissingTopic { topic: String, brokers: String },
    #[error("creating topic `{topic}`: {reason}")]
    CreateTopic { topic: String, reason: String },
}
