//! How one topic's export run goes: what its values are, how large its
//! files and steps, where it decodes Avro, its memory and disk budgets.

use std::sync::Arc;
use std::time::Duration;

use super::upload::DEFAULT_UPLOAD_CONCURRENCY;
use crate::codec::SchemaRegistry;
use crate::config::{ExportFormat, LateData, PartitionBy};
use crate::table::{Timestamps, ValueColumn};

/// Row groups of a topic's open files, at most, in memory (256 MiB).
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

/// A topic's open files, at most, on the staging disk of a remote export
/// (1 GiB).
pub const DEFAULT_STAGING_BUDGET: u64 = 1 << 30;

/// The size files roll at and compaction merges up to (128 MiB).
pub const DEFAULT_TARGET_FILE_BYTES: u64 = 128 << 20;

/// Files open this long are stored, whatever their size (5 minutes).
pub const DEFAULT_MAX_FILE_AGE: Duration = Duration::from_secs(300);

/// Files no record reached for this long are stored (1 minute).
pub const DEFAULT_MAX_FILE_IDLE: Duration = Duration::from_secs(60);

/// How a topic's files go by time (topics.json's `partition_by`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLayout {
    pub by: PartitionBy,
    /// The value's field holding the time; `None`: the Kafka timestamp.
    pub field: Option<String>,
    pub late: LateData,
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub value: ValueColumn,
    /// Records read per step.
    pub batch_size: usize,
    /// Files cover blocks of this many offsets (`0..N`, `N..2N`, ...), so a
    /// file holds at most this many rows, and where a file ends depends
    /// only on the offsets, never on how the records were polled.
    pub max_rows_per_file: u64,
    /// Names the staging folder and the aggregator's result of this run.
    pub run_id: String,
    /// Decode values as Confluent-framed Avro with this registry; they are
    /// written as JSON text, with typed columns from the topic's subject.
    pub registry: Option<Arc<SchemaRegistry>>,
    /// Most bytes the open row groups of all the topic's files may hold in
    /// memory: past it, the largest are written out, so memory stays
    /// bounded however many partitions a topic has.
    pub memory_budget: usize,
    /// Parquet files, or a Delta table.
    pub format: ExportFormat,
    /// A Delta table gets a checkpoint every this many versions, unless
    /// it sets `delta.checkpointInterval` itself.
    pub checkpoint_interval: u64,
    /// Finished files stored at once (the end of a run finishes every
    /// partition's file together).
    pub upload_concurrency: usize,
    /// Most bytes the open files of the topic may hold on the staging disk
    /// when the storage is remote: past it, the largest are finished early
    /// and stored (more, smaller files), so a backlog over many partitions
    /// cannot fill the disk. A local folder stages inside itself, where the
    /// files end up anyway.
    pub staging_budget: u64,
    /// Folders by time, when the topic has them.
    pub time: Option<TimeLayout>,
    /// A partition's open files are finished and stored once one of them
    /// holds this many bytes, once they have been open for `max_file_age`,
    /// or once no record has reached them for `max_file_idle`.
    pub target_file_bytes: u64,
    pub max_file_age: Duration,
    pub max_file_idle: Duration,
    /// At the end of a run, merge the small files of complete time buckets
    /// (up to `target_file_bytes` each).
    pub compact: bool,
}

impl ExportOptions {
    pub fn new(run_id: impl Into<String>) -> Self {
        ExportOptions {
            value: ValueColumn::Json,
            batch_size: 5_000,
            max_rows_per_file: 1_000_000,
            run_id: run_id.into(),
            registry: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            format: ExportFormat::Parquet,
            checkpoint_interval: 10,
            upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
            staging_budget: DEFAULT_STAGING_BUDGET,
            time: None,
            target_file_bytes: DEFAULT_TARGET_FILE_BYTES,
            max_file_age: DEFAULT_MAX_FILE_AGE,
            max_file_idle: DEFAULT_MAX_FILE_IDLE,
            compact: true,
        }
    }

    /// The unit of the files' `timestamp` column.
    pub(super) fn timestamps(&self) -> Timestamps {
        match self.format {
            ExportFormat::Parquet => Timestamps::Millis,
            ExportFormat::Delta => Timestamps::Micros,
        }
    }
}
