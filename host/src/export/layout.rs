//! Where an export puts what it writes, and reading those names back. A
//! Parquet export's data file is named by the range of Kafka offsets it
//! covers, so the storage itself says how far each partition has been
//! exported. A Delta table's files are named by their range and run (the
//! log, not the names, says what the table holds).

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
}

impl FileNames {
    pub fn data(&self, topic: &str, partition: i32, first: i64, last: i64) -> String {
        match self {
            FileNames::Ranges => data_key(topic, partition, first, last),
            FileNames::Delta { run_id } => delta_data_key(topic, partition, first, last, run_id),
        }
    }

    pub fn dead_letters(&self, topic: &str, partition: i32, first: i64, last: i64) -> String {
        match self {
            FileNames::Ranges => dead_letter_key(topic, partition, first, last),
            FileNames::Delta { run_id } => {
                delta_dead_letter_key(topic, partition, first, last, run_id)
            }
        }
    }
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
            names.data("orders.eu", 3, 1000, 1999),
            "orders.eu/part-3-1000-1999-run-1-abc.zstd.parquet"
        );
        assert_eq!(
            names.dead_letters("orders.eu", 3, 1000, 1999),
            "orders.eu/_dead_letters/part-3-1000-1999-run-1-abc.jsonl"
        );
        assert_eq!(FileNames::Ranges.data("orders.eu", 3, 1000, 1999), key);
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
