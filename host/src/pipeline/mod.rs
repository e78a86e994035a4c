//! Moving records through transforms: read a topic to its end in batches,
//! run a transformer and route each outcome (output topics or the
//! dead-letter topic), or feed an aggregator and collect its result.

mod aggregate;
mod dead_letter;
pub mod deliver;
mod route;
mod transform;

pub use crate::telemetry::{TRACEPARENT, TraceContext};
pub use aggregate::aggregate_topic;
pub use dead_letter::headers as dead_letter_headers;
pub use route::{Routed, Routing};
pub use transform::{RunStats, TopicRun, transform_topic};

use crate::kafka::KafkaError;
use crate::runtime::GuestError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Guest(#[from] GuestError),
}

/// Header names Sluice adds to what it produces.
pub mod header {
    /// `name@version` of the transform that made an output record.
    pub const TRANSFORM: &str = "sluice.transform";
    pub const ERROR_KIND: &str = "sluice.error.kind";
    pub const ERROR_REASON: &str = "sluice.error.reason";
    pub const SOURCE_TOPIC: &str = "sluice.source.topic";
    pub const SOURCE_PARTITION: &str = "sluice.source.partition";
    pub const SOURCE_OFFSET: &str = "sluice.source.offset";
}
