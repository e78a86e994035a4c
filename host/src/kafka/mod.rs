//! Kafka I/O through librdkafka: client settings, a bounded reader that
//! always ends, a producer that reports every delivery, topic creation.

mod catalog;
mod config;
mod consumer;
mod convert;
mod error;
mod group;
mod logs;
mod metadata;
mod oauth;
mod pool;
mod producer;
mod progress;
mod read_plan;
mod reader;
mod topics;

pub use catalog::{
    MAX_TOPICS, PartitionOffsets, TopicList, TopicSummary, TopicsQuery, list_topics,
};
pub use config::KafkaConfig;
pub use error::KafkaError;
pub use group::{GroupConsumer, GroupStart, Polled};
pub use metadata::PartitionRange;
pub use metadata::{check_topic_name, end_offsets};
pub use oauth::OAuthBearer;
pub use pool::ReaderPool;
pub use producer::{InFlight, ProduceRecord, Producer, Refused};
pub use progress::{Forgotten, OffsetTracker};
pub use rdkafka::consumer::CommitMode;
pub use read_plan::{ReadPlan, Start};
pub use reader::BoundedReader;
pub use topics::{create_topic, ensure_topic, require_topics};
