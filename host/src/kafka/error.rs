use std::time::Duration;

/// A Kafka operation failed; the message names the topic and partition.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot create a Kafka client for {brokers}: {source}")]
    Client {
        brokers: String,
        source: rdkafka::error::KafkaError,
    },
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
    #[error("creating topic `{topic}`: {reason}")]
    CreateTopic { topic: String, reason: String },
}
