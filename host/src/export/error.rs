//! Why a topic's export failed.

use std::path::PathBuf;

use crate::kafka::KafkaError;
use crate::runtime::GuestError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("writing {}: {reason}", path.display())]
    Parquet { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Aggregator(#[from] GuestError),
    #[error("aggregator `{aggregator}` result {index} is not JSON: {reason}")]
    AggregateNotJson {
        aggregator: String,
        index: usize,
        reason: String,
    },
    #[error(transparent)]
    AggregateTable(#[from] crate::table::ParquetError),
    #[error(transparent)]
    Delta(#[from] super::delta::DeltaError),
    #[error(transparent)]
    Ranges(#[from] super::ranges::RangeError),
    /// The registry could not be asked: the run stops, and what it read
    /// after the last stored file is read again by the next run.
    #[error("{0}; the run stopped and commits nothing past the files it stored")]
    SchemaRegistry(crate::codec::CodecError),
    #[error("{key} cannot be read: {reason}")]
    Corrupt { key: String, reason: String },
}
