//! The export: topics read by their plans, written as Parquet files named
//! by the offsets they hold (`topic=T/partition=P/T+P+<first>-<last>.parquet`),
//! or as a Delta table per topic (`delta/`) from the same files. The
//! storage is the record of what was exported (the files, or the table's
//! log): a run goes on after the last offset stored, so a crash between
//! storing files and committing offsets never stores a record twice, and a
//! re-export of a range replaces the files it covers whole. Group offsets
//! are committed once every file is in place.

mod aggregate;
mod buckets;
mod compact;
mod compact_table;
mod complete;
mod dead_letters;
mod decode;
mod delta;
mod error;
mod layout;
mod options;
mod partition_file;
mod ranges;
mod resume;
mod run;
mod status;
mod stored;
mod time_layout;
mod topic;
mod upload;
mod writer;
mod written;

pub use delta::{DeltaError, DeltaReport};
pub use error::ExportError;
pub use layout::{FileNames, aggregate_key, data_key, dead_letter_key, delta_log, delta_table};
// What `lake/` reads the export back by: the names, the range records and
// the table's log.
pub(crate) use delta::Snapshot;
pub use layout::{DATA, data_dir, range_of};
pub use ranges::RangeError;
pub(crate) use ranges::StoredRanges;
// `PartitionFile` and `decode` are public so that the export's CPU path can
// be measured without a broker (`tests/benches/export_encode.rs`).
pub use aggregate::AggregateReport;
pub use buckets::{Bucket, Location};
pub use compact::CompactReport;
pub use complete::Completeness;
pub use decode::{Refusal, decode};
pub use options::{
    DEFAULT_MAX_FILE_AGE, DEFAULT_MAX_FILE_IDLE, DEFAULT_TARGET_FILE_BYTES, TimeLayout,
};
pub use partition_file::PartitionFile;
pub use run::{ExportRun, RunError, RunSettings, TopicError, export_topics, new_run_id};
pub use status::{BucketStatus, TopicStatus, export_status};
pub use time_layout::TimeReport;
pub use topic::{
    DEFAULT_MEMORY_BUDGET, DEFAULT_STAGING_BUDGET, ExportOptions, TopicReport, export_topic,
};
pub use written::{ColumnStats, WrittenFile};
// Public so that storing a run's files can be measured without a broker
// (`tests/benches/export_upload.rs`).
pub use upload::{DEFAULT_UPLOAD_CONCURRENCY, ToStore, store_all};
