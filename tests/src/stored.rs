//! What an export folder holds, read back the way a reader of the lake
//! would: every file under it, and the (partition, Kafka offset) of every
//! record in its Parquet files and dead-letter files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, Int32Array, Int64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Every file under `root`, sorted; the export's own staging folder
/// (`.staging`) is not the lake's and is left out.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_none_or(|n| n != ".staging") {
                    stack.push(path);
                }
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `(partition, kafka_offset)` of every row of a Parquet file.
pub fn parquet_offsets(path: &Path) -> Vec<(i32, i64)> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    let mut offsets = Vec::new();
    for batch in reader {
        let batch = batch.expect("readable rows");
        let partitions = batch
            .column_by_name("partition")
            .expect("a partition column");
        let partitions = partitions
            .as_any()
            .downcast_ref::<Int32Array>()
            .expect("int32");
        let kafka = batch
            .column_by_name("kafka_offset")
            .expect("a kafka_offset column");
        let kafka = kafka.as_any().downcast_ref::<Int64Array>().expect("int64");
        offsets.extend((0..batch.num_rows()).map(|i| (partitions.value(i), kafka.value(i))));
    }
    offsets
}

/// `(partition, offset)` of every dead letter in a `.jsonl` file.
pub fn dead_letter_offsets(path: &Path) -> Vec<(i32, i64)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| {
            let dead: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            (
                dead["partition"].as_i64().expect("a partition") as i32,
                dead["offset"].as_i64().expect("an offset"),
            )
        })
        .collect()
}

/// How often each `(partition, offset)` is stored under `root`: in data
/// files, and in dead-letter files too when `with_dead_letters`.
pub fn stored_offsets(root: &Path, with_dead_letters: bool) -> BTreeMap<(i32, i64), usize> {
    let mut seen = BTreeMap::new();
    for path in files_under(root) {
        let name = path.to_string_lossy();
        let offsets = if name.ends_with(".parquet") && !name.contains("/_aggregates/") {
            parquet_offsets(&path)
        } else if with_dead_letters && name.ends_with(".jsonl") {
            dead_letter_offsets(&path)
        } else {
            continue;
        };
        for at in offsets {
            *seen.entry(at).or_insert(0) += 1;
        }
    }
    seen
}

/// How often each `(partition, Kafka offset)` is in a topic's output
/// under `out`: its Parquet files and dead letters, or with `format`
/// `delta` the live files of the table `out/<topic>` and their dead
/// letters.
pub fn in_output(out: &Path, topic: &str, format: &str) -> BTreeMap<(i32, i64), usize> {
    if format == "delta" {
        crate::delta::stored(&out.join(topic))
    } else {
        stored_offsets(out, true)
    }
}

/// Whether `seen` holds each of `in_topic` exactly once and nothing else:
/// `None` if so, else how many are missing and how many stored twice,
/// with the first of each.
pub fn not_each_once(
    seen: &BTreeMap<(i32, i64), usize>,
    in_topic: &[(i32, i64)],
) -> Option<String> {
    let missing: Vec<_> = in_topic
        .iter()
        .filter(|at| !seen.contains_key(at))
        .collect();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    (!missing.is_empty() || !twice.is_empty() || seen.len() != in_topic.len()).then(|| {
        format!(
            "{} missing (first {:?}), {} stored twice (first {:?}), {} stored of {}",
            missing.len(),
            missing.first(),
            twice.len(),
            twice.first(),
            seen.len(),
            in_topic.len()
        )
    })
}
