//! The export: a topic read by its plan, written as Parquet files named by
//! what they hold (`topic=T/partition=P/T+P+<first>-<last>.parquet`, Kafka
//! offsets), so a re-run of the same range replaces the same files; group
//! offsets are committed only once every file is in place.

mod dead_letters;
mod partition_file;
mod topic;

pub use partition_file::WrittenFile;
pub use topic::{ExportError, ExportOptions, TopicReport, export_topic};
