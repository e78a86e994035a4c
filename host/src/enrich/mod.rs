//! Enrichment pipelines: records from one or more input topics, optionally
//! joined by id, through a transformer, to one or more output topics, with
//! failures dead-lettered. At-least-once: an input offset is committed only
//! when that record and every earlier one in its partition is finished.

mod definition;
mod enricher;
mod join;
mod raw_object;
mod worker;

pub use definition::{
    DefinitionError, DefinitionFileError, EnrichFormat, JoinSpec, LimitSpec, OnTimeout,
    PipelineDefinition, StartFrom, TransformRef,
};
pub use enricher::{EnrichStats, Enricher, Step};
pub use join::{LIMIT_KIND, MEMBERS_HEADER, MISSING_HEADER};
// Public so that the enrichment bench's native peer joins with the same
// merge (`tests/benches/enrich_transform.rs`).
pub use raw_object::{Merged, ObjectError, RawObject};
pub use worker::{WorkerOptions, run_worker};

use crate::kafka::KafkaError;
use crate::runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}
