//! Why a Delta table could not be read or written.

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{key}: not a Delta log entry Sluice can read: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(
        "the table at `{table}` has no version {missing} in its log, which starts later \
         (was it cleaned up without a checkpoint?)"
    )]
    LogGap { table: String, missing: u64 },
    #[error(
        "the table at `{table}` needs reader version {reader} and writer version {writer}{features}; \
         Sluice reads version 1 and writes version 2"
    )]
    Protocol {
        table: String,
        reader: i32,
        writer: i32,
        features: String,
    },
    #[error("the table at `{table}` cannot take this export's columns: {reason}")]
    Schema { table: String, reason: String },
    #[error(
        "the table at `{table}` changed under this run at version {version}: {reason}; \
         the files written are left for VACUUM and the next run reads their records again"
    )]
    Conflict {
        table: String,
        version: u64,
        reason: String,
    },
    #[error(
        "committing version {version} of the table at `{table}`: {reason}; whether it was \
         committed is unknown, so nothing was removed and the next run reads the log again"
    )]
    UnknownOutcome {
        table: String,
        version: u64,
        reason: String,
    },
    #[error(
        "the table at `{table}` is append-only (delta.appendOnly), and this re-export would \
         replace {files} of its files"
    )]
    AppendOnly { table: String, files: usize },
    #[error(
        "the table at `{table}` holds {files} data files that Sluice did not write (compacted \
         by OPTIMIZE?): a re-export cannot tell which of their rows it would replace; \
         export from the group's offsets instead"
    )]
    ForeignFiles { table: String, files: usize },
    #[error("checkpoint of the table at `{table}`: {reason}")]
    Checkpoint { table: String, reason: String },
}
