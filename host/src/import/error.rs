//! Why an import stopped (a file that cannot be read is not this: it is
//! reported by name and the others go on).

use crate::kafka::KafkaError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{location}: {reason}")]
    Store { location: String, reason: String },
    #[error(
        "progress file {location} is not readable ({reason}): fix or remove it (removing imports every file again)"
    )]
    BadProgress { location: String, reason: String },
    #[error("importing {file}: {source}")]
    Kafka {
        file: String,
        source: Box<KafkaError>,
    },
    #[error(
        "another import of this folder into the topic is running (lock {location}, held by {owner}, refreshed {seconds} s ago): wait for it to end; a lock of an import that died is taken over after ten minutes"
    )]
    Busy {
        location: String,
        owner: String,
        seconds: u64,
    },
}
