//! Where an export puts what it writes, and reading those names back. A
//! Parquet export's data file is named by the range of Kafka offsets it
//! covers, so the storage itself says how far each partition has been
//! exported. A Delta table's files are named by their range and run (the
//! log, not the names, says what the table holds). A time-partitioned
//! export's files go to time folders, named by their unit's range and run
//! (the range records, or the table's log, say what counts).

use super::buckets::{Bucket, Location};
use crate::config::PartitionBy;

/// The folder of a partition's data files.
pub fn data_dir(topic: &str, partition: i32) -> String {
    format!("topic={topic}/partition={partition}")
}

/// `topic=T/partition=P/T+P+<first>-<last>.parquet`, Kafka offsets, the
/// naming Kafka Connect's storage sinks use.
pub fn data_key(topic: &str, partition: i32, first: i64, last: i64) -> String {
    format!(
        "{}/{}",
        data_dir(topic, partition),
        file_name(topic, partition, first, last, DATA)
    )
}

/// The folder of the dead letters of a partition's files.
pub fn dead_letter_dir(topic: &str, partition: i32) -> String {
    format!("_dead_letters/topic={topic}/partition={partition}")
}

/// The records of data file `first..=last` that could not be written to
/// it: one JSON line each, stored before the data file and named like it.
pub fn dead_letter_key(topic: &str, partition: i32, first: i64, last: i64) -> String {
    format!(
        "{}/{}",
        dead_letter_dir(topic, partition),
        file_name(topic, partition, first, last, DEAD_LETTERS)
    )
}

/// The folder of an aggregator's results over a topic, one per run.
pub fn aggregate_dir(aggregator: &str, topic: &str) -> String {
    format!("_aggregates/{aggregator}/topic={topic}")
}

/// An aggregator's result of one run.
pub fn aggregate_key(aggregator: &str, topic: &str, run_id: &str) -> String {
    format!("{}/{run_id}.{AGGREGATE}", aggregate_dir(aggregator, topic))
}

/// Which offsets the aggregates up to and including this run's hold:
/// stored before the result, and counted only once the result is stored.
pub fn aggregate_frontier_key(aggregator: &str, topic: &str, run_id: &str) -> String {
    format!(
        "{}/{run_id}.{AGGREGATE_FRONTIER}",
        aggregate_dir(aggregator, topic)
    )
}

/// The records of a run the aggregator failed on, with the reasons: stored
/// before the result, like a data file's dead letters.
pub fn aggregate_dead_letters_key(aggregator: &str, topic: &str, run_id: &str) -> String {
    format!(
        "{}/{run_id}.{AGGREGATE_DEAD_LETTERS}",
        aggregate_dir(aggregator, topic)
    )
}

pub const AGGREGATE: &str = "parquet";
pub const AGGREGATE_FRONTIER: &str = "frontier.json";
pub const AGGREGATE_DEAD_LETTERS: &str = "dead_letters.jsonl";

/// The staging folder of one entry of a run: entries of one topic (files
/// and a table side by side) write their files apart.
pub fn staging_folder(topic: &str, format: crate::config::ExportFormat) -> String {
    format!("{topic}.{}", format.name())
}

/// How an export names the files it stores for one range of offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNames {
    /// [`data_key`] and [`dead_letter_key`]: one name per range, so a
    /// re-export of the range writes the same names.
    Ranges,
    /// [`delta_data_key`] and [`delta_dead_letter_key`]: unique per run,
    /// since a Delta table's data files must never be overwritten.
    Delta { run_id: String },
    /// [`bucket_data_key`]: in the time folder of each file, unique per
    /// run (the range records say which files count).
    Buckets { run_id: String, by: PartitionBy },
    /// [`delta_bucket_data_key`]: a Delta table partitioned by time.
    DeltaBuckets { run_id: String, by: PartitionBy },
}

impl FileNames {
    pub fn data(
        &self,
        topic: &str,
        partition: i32,
        (first, last): (i64, i64),
        location: Option<Location>,
    ) -> String {
        match (self, location) {
            (FileNames::Delta { run_id }, _) => {
                delta_data_key(topic, partition, first, last, run_id)
            }
            (FileNames::Buckets { run_id, by }, Some(location)) => {
                bucket_data_key(topic, partition, (first, last), run_id, *by, location)
            }
            (FileNames::DeltaBuckets { run_id, by }, Some(location)) => {
                delta_bucket_data_key(topic, partition, (first, last), run_id, *by, location)
            }
            _ => data_key(topic, partition, first, last),
        }
    }

    pub fn dead_letters(
        &self,
        topic: &str,
        partition: i32,
        (first, last): (i64, i64),
        location: Option<Location>,
    ) -> String {
        match self {
            FileNames::Ranges => dead_letter_key(topic, partition, first, last),
            FileNames::Delta { run_id } => {
                delta_dead_letter_key(topic, partition, first, last, run_id)
            }
            FileNames::Buckets { .. } => {
                let data = self.data(topic, partition, (first, last), location);
                let stem = data.strip_suffix(DATA).unwrap_or(&data);
                format!("_dead_letters/{stem}{DEAD_LETTERS}")
            }
            FileNames::DeltaBuckets { .. } => {
                let data = self.data(topic, partition, (first, last), location);
                let inside = data
                    .strip_prefix(&format!("{}/", delta_table(topic)))
                    .unwrap_or(&data);
                let stem = inside.strip_suffix("zstd.parquet").unwrap_or(inside);
                format!("{}/_dead_letters/{stem}{DEAD_LETTERS}", delta_table(topic))
            }
        }
    }

    /// How the files go by time, when they do.
    pub fn partition_by(&self) -> Option<PartitionBy> {
        match self {
            FileNames::Buckets { by, .. } | FileNames::DeltaBuckets { by, .. } => Some(*by),
            _ => None,
        }
    }
}

/// The folder of a location's files: `topic=T/dt=…/hour=…`, or the same
/// under `_late/` (beside the export's folders, so a reader of
/// `topic=T/` does not take late records for on-time ones).
pub fn bucket_dir(topic: &str, by: PartitionBy, location: Location) -> String {
    let late = if location.late { "_late/" } else { "" };
    format!("{late}topic={topic}/{}", by.path(location.bucket))
}

/// `topic=T/dt=D/hour=H/T+P+<first>-<last>.<run>.parquet`: named by the
/// unit's offsets like a flat export's file, and by its run, so that a
/// re-export or a compaction never overwrites a file still recorded.
pub fn bucket_data_key(
    topic: &str,
    partition: i32,
    (first, last): (i64, i64),
    run_id: &str,
    by: PartitionBy,
    location: Location,
) -> String {
    format!(
        "{}/{topic}+{partition}+{first}-{last}.{run_id}.{DATA}",
        bucket_dir(topic, by, location)
    )
}

/// `<table>/dt=D/hour=H/part-<partition>-<first>-<last>-<run id>.zstd.parquet`:
/// a partitioned Delta table's file, in its partition's folder.
pub fn delta_bucket_data_key(
    topic: &str,
    partition: i32,
    (first, last): (i64, i64),
    run_id: &str,
    by: PartitionBy,
    location: Location,
) -> String {
    format!(
        "{}/{}/part-{partition}-{first}-{last}-{run_id}.zstd.parquet",
        delta_table(topic),
        by.path(location.bucket)
    )
}

/// The range records of a time-partitioned partition (see `ranges.rs`).
pub fn ranges_dir(topic: &str, partition: i32) -> String {
    format!("_ranges/topic={topic}/partition={partition}")
}

/// The journal of a time-partitioned topic's runs.
pub fn pending_dir(topic: &str) -> String {
    format!("_ranges/topic={topic}/_pending")
}

/// Where a topic's completeness markers go: `_complete/topic=T`, or
/// `<table>/_complete` inside a Delta table (a folder its readers skip).
pub fn complete_dir(topic: &str, format: crate::config::ExportFormat) -> String {
    match format {
        crate::config::ExportFormat::Parquet => format!("_complete/topic={topic}"),
        crate::config::ExportFormat::Delta => format!("{}/_complete", delta_table(topic)),
    }
}

/// `_complete/topic=T/dt=D/hour=H`: stored once, when every partition has
/// passed the bucket.
pub fn marker_key(
    topic: &str,
    format: crate::config::ExportFormat,
    by: PartitionBy,
    bucket: Bucket,
) -> String {
    format!("{}/{}", complete_dir(topic, format), by.path(bucket))
}

/// The completeness state of a topic's output (see `complete.rs`).
pub fn complete_state_key(topic: &str, format: crate::config::ExportFormat) -> String {
    format!("{}/_state.json", complete_dir(topic, format))
}

/// The folder of a topic's Delta table: the topic's name, under the
/// storage URL (Kafka topic names are `[a-zA-Z0-9._-]`, never `.` or `..`).
pub fn delta_table(topic: &str) -> String {
    topic.to_owned()
}

/// The table's log: `<table>/_delta_log`.
pub fn delta_log(topic: &str) -> String {
    format!("{}/_delta_log", delta_table(topic))
}

/// `<table>/part-<partition>-<first>-<last>-<run id>.zstd.parquet`: at the
/// table's root (the table is not partitioned: Kafka partitions are not
/// what its readers filter on, and folders per partition would only
/// multiply small files), and without `+`, which Hadoop's Azure driver
/// reads as a space.
pub fn delta_data_key(topic: &str, partition: i32, first: i64, last: i64, run_id: &str) -> String {
    format!(
        "{}/part-{partition}-{first}-{last}-{run_id}.zstd.parquet",
        delta_table(topic)
    )
}

/// `<table>/_dead_letters/part-<partition>-<first>-<last>-<run id>.jsonl`:
/// inside the table's folder, so the table moves with them, in a folder
/// that Delta readers and VACUUM leave alone (a leading `_`), named like
/// the data file they belong to.
pub fn delta_dead_letter_key(
    topic: &str,
    partition: i32,
    first: i64,
    last: i64,
    run_id: &str,
) -> String {
    format!(
        "{}/_dead_letters/part-{partition}-{first}-{last}-{run_id}.jsonl",
        delta_table(topic)
    )
}

pub const DATA: &str = "parquet";
pub const DEAD_LETTERS: &str = "jsonl";

fn file_name(topic: &str, partition: i32, first: i64, last: i64, extension: &str) -> String {
    format!("{topic}+{partition}+{first}-{last}.{extension}")
}

/// The offsets `(first, last)` a key written by [`data_key`] or
/// [`dead_letter_key`] names, when it is one of this partition's files
/// with this extension. Kafka topic names cannot hold `+`, so the name
/// splits unambiguously.
pub fn range_of(key: &str, topic: &str, partition: i32, extension: &str) -> Option<(i64, i64)> {
    let name = key.rsplit('/').next()?;
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    let rest = stem.strip_prefix(topic)?.strip_prefix('+')?;
    let (named_partition, range) = rest.split_once('+')?;
    if named_partition.parse::<i32>().ok()? != partition {
        return None;
    }
    let (first, last) = range.split_once('-')?;
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (0 <= first && first <= last).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_to_their_ranges() {
        let key = data_key("orders.eu", 3, 1000, 1999);
        assert_eq!(
            key,
            "topic=orders.eu/partition=3/orders.eu+3+1000-1999.parquet"
        );
        assert_eq!(range_of(&key, "orders.eu", 3, DATA), Some((1000, 1999)));
        let dead = dead_letter_key("orders.eu", 3, 1000, 1999);
        assert_eq!(
            range_of(&dead, "orders.eu", 3, DEAD_LETTERS),
            Some((1000, 1999))
        );
        assert_eq!(range_of(&dead, "orders.eu", 3, DATA), None);
        let names = FileNames::Delta {
            run_id: "run-1-abc".into(),
        };
        assert_eq!(
            names.data("orders.eu", 3, (1000, 1999), None),
            "orders.eu/part-3-1000-1999-run-1-abc.zstd.parquet"
        );
        assert_eq!(
            names.dead_letters("orders.eu", 3, (1000, 1999), None),
            "orders.eu/_dead_letters/part-3-1000-1999-run-1-abc.jsonl"
        );
        assert_eq!(
            FileNames::Ranges.data("orders.eu", 3, (1000, 1999), None),
            key
        );
        let hour = Location {
            bucket: Bucket {
                start: 1_796_479_200_000,
            },
            late: false,
        };
        let by = PartitionBy::Hour;
        let names = FileNames::Buckets {
            run_id: "run-1-abc".into(),
            by,
        };
        assert_eq!(
            names.data("orders.eu", 3, (1000, 1999), Some(hour)),
            "topic=orders.eu/dt=2026-12-05/hour=14/orders.eu+3+1000-1999.run-1-abc.parquet"
        );
        assert_eq!(
            names.dead_letters("orders.eu", 3, (1000, 1999), Some(hour)),
            "_dead_letters/topic=orders.eu/dt=2026-12-05/hour=14/orders.eu+3+1000-1999.run-1-abc.jsonl"
        );
        let late = Location { late: true, ..hour };
        assert_eq!(
            names.data("o", 3, (1, 2), Some(late)),
            "_late/topic=o/dt=2026-12-05/hour=14/o+3+1-2.run-1-abc.parquet"
        );
        let table = FileNames::DeltaBuckets {
            run_id: "run-1-abc".into(),
            by,
        };
        assert_eq!(
            table.data("o", 3, (1, 2), Some(hour)),
            "o/dt=2026-12-05/hour=14/part-3-1-2-run-1-abc.zstd.parquet"
        );
        assert_eq!(
            table.dead_letters("o", 3, (1, 2), Some(hour)),
            "o/_dead_letters/dt=2026-12-05/hour=14/part-3-1-2-run-1-abc.jsonl"
        );
        for other in [
            "topic=o/partition=3/o+4+1-2.parquet",
            "topic=o/partition=3/o+3+2-1.parquet",
            "topic=o/partition=3/o+3+-1-2.parquet",
            "topic=o/partition=3/o+3+1-2.parquet.partial",
            "topic=o/partition=3/other+3+1-2.parquet",
            "topic=o/partition=3/o+3+x-2.parquet",
            "topic=o/partition=3/o+3+12.parquet",
        ] {
            assert_eq!(range_of(other, "o", 3, DATA), None, "{other}");
        }
    }
}
