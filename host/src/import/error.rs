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
        "another import of this folder into the topic is running: {owner} holds its lease {location} and renews it (unrenewed, it would expire in {expires_in_secs} s). Wait for that import to end: the lease of an import that stopped without releasing it is taken over once it expires"
    )]
    Busy {
        location: String,
        owner: String,
        expires_in_secs: u64,
    },
    #[error(
        "this import's lease {location} is lost ({reason}): stopped before producing or recording more; a re-run resumes from the progress file"
    )]
    LeaseLost { location: String, reason: String },
    #[error(
        "lease {location} is not readable ({reason}): if no import of this folder into the topic is running, remove it"
    )]
    BadLease { location: String, reason: String },
    #[error(
        "progress file {location} was changed by another import while this one ran: stopped without overwriting it; a re-run resumes from it"
    )]
    ProgressChanged { location: String },
}
