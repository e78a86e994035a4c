//! Where an export puts what it writes, and reading those names back. A
//! data file's name is the range of Kafka offsets it covers, so the storage
//! itself says how far each partition has been exported.

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

/// An aggregator's result of one run.
pub fn aggregate_key(aggregator: &str, topic: &str, run_id: &str) -> String {
    format!("_aggregates/{aggregator}/topic={topic}/{run_id}.parquet")
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
