//! What a finished file of an export is: where it waits, the name it is
//! stored under, the offsets it covers and what it holds. A leaf that the
//! writer, the uploads and a Delta table's commits all read.

use std::path::PathBuf;

use super::buckets::Location;

/// A finished file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Where it was written locally; moved to `key` in storage after.
    pub staging: PathBuf,
    /// `topic=T/partition=P/T+P+<first>-<last>.parquet`.
    pub key: String,
    pub partition: i32,
    /// Kafka offsets of the first and last record of the range the file
    /// covers, dead-lettered records included.
    pub first: i64,
    pub last: i64,
    pub rows: u64,
    pub bytes: u64,
    /// Records of the range kept in the dead-letter file instead.
    pub dead_lettered: u64,
    /// That file's local path and storage key, when there are any.
    pub dead_letters: Option<(PathBuf, String)>,
    /// Bounds of the file's integer and timestamp columns, from the
    /// statistics the Parquet writer computed (a Delta table's `add`
    /// carries them for data skipping).
    pub stats: Vec<ColumnStats>,
    /// Its time folder, when the topic's files go by time.
    pub location: Option<Location>,
    /// Rows whose bucket was complete when they were written, placed by
    /// the late-data policy.
    pub late: u64,
    /// The time of the last record kept in the file's unit (all the files
    /// of one range of one partition), by offset.
    pub last_time: Option<i64>,
}

/// Smallest and largest value and null count of one top-level INT32 or
/// INT64 column (timestamps included, as their stored integer), over the
/// file's row groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnStats {
    pub column: String,
    /// `None` when the column has no non-null value.
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub nulls: u64,
}
