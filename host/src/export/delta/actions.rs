//! The actions of a Delta table's log (delta-io/delta `PROTOCOL.md`,
//! "Actions"): one JSON object per line in a commit, one row per action in
//! a checkpoint. One type serves both: a line or row has one action set.
//! Only the fields of protocol 1/2 are kept; unknown actions and fields are
//! ignored when read, as the protocol asks of readers.

use std::collections::BTreeMap;

use arrow_schema::{DataType, Schema, TimeUnit};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::export::written::WrittenFile;

/// Delta's `Map[String, String]`; values may be null in the wild.
pub type StringMap = BTreeMap<String, Option<String>>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    #[serde(
        rename = "commitInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub commit_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(rename = "metaData", default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<Txn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<Add>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<Remove>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    pub min_reader_version: i32,
    pub min_writer_version: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_features: Option<Vec<String>>,
}

impl Protocol {
    /// What Sluice writes and what Synapse serverless reads: no table
    /// features, no column mapping, no deletion vectors.
    pub const SLUICE: (i32, i32) = (1, 2);

    pub fn sluice() -> Self {
        Protocol {
            min_reader_version: Self::SLUICE.0,
            min_writer_version: Self::SLUICE.1,
            reader_features: None,
            writer_features: None,
        }
    }

    /// Whether Sluice reads and writes tables of this protocol correctly.
    pub fn supported(&self) -> bool {
        self.min_reader_version <= Self::SLUICE.0 && self.min_writer_version <= Self::SLUICE.1
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub format: Format,
    pub schema_string: String,
    #[serde(default)]
    pub partition_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
    #[serde(default)]
    pub configuration: StringMap,
}

impl Metadata {
    /// A table property, when set.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.configuration.get(key)?.as_deref()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Format {
    pub provider: String,
    #[serde(default)]
    pub options: StringMap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Txn {
    pub app_id: String,
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Add {
    pub path: String,
    #[serde(default)]
    pub partition_values: StringMap,
    pub size: i64,
    pub modification_time: i64,
    pub data_change: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<StringMap>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remove {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<i64>,
    pub data_change: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_file_metadata: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_values: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
}

/// Which Kafka records one of Sluice's data files holds, from its `add`
/// action's tags: the partition and the range of offsets it covers
/// (dead-lettered records included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRange {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    /// The time of the last record of the file's range (by offset), when
    /// the table is partitioned by time: how far the partition has got.
    pub last_time: Option<i64>,
    /// Made by a compaction: never merged again.
    pub compacted: bool,
}

const TAG_PARTITION: &str = "sluice.partition";
const TAG_FIRST: &str = "sluice.firstOffset";
const TAG_LAST: &str = "sluice.lastOffset";
const TAG_LAST_TIME: &str = "sluice.lastTime";
const TAG_COMPACTED: &str = "sluice.compacted";
/// The dead-letter file of the data file's range, relative to the table.
pub const TAG_DEAD_LETTERS: &str = "sluice.deadLetters";

impl Add {
    /// The `add` of a stored data file at `path` (relative to the table),
    /// with its statistics (`numRecords`, and bounds and null counts of the
    /// integer and timestamp columns of `schema`) and tags saying which
    /// records it holds.
    pub fn of_file(
        file: &WrittenFile,
        path: String,
        dead_letters: Option<String>,
        schema: &Schema,
        now_millis: i64,
    ) -> Self {
        let mut tags = StringMap::from([
            (TAG_PARTITION.to_owned(), Some(file.partition.to_string())),
            (TAG_FIRST.to_owned(), Some(file.first.to_string())),
            (TAG_LAST.to_owned(), Some(file.last.to_string())),
        ]);
        if let Some(dead_letters) = dead_letters {
            tags.insert(TAG_DEAD_LETTERS.to_owned(), Some(dead_letters));
        }
        if let Some(time) = file.last_time {
            tags.insert(TAG_LAST_TIME.to_owned(), Some(time.to_string()));
        }
        Add {
            path,
            partition_values: StringMap::new(),
            size: i64::try_from(file.bytes).unwrap_or(i64::MAX),
            modification_time: now_millis,
            data_change: true,
            stats: Some(stats(file, schema).to_string()),
            tags: Some(tags),
        }
    }

    /// Marks the file as a compaction's: written with `dataChange` false
    /// and never merged again.
    pub fn compacted(mut self) -> Self {
        self.data_change = false;
        if let Some(tags) = &mut self.tags {
            tags.insert(TAG_COMPACTED.to_owned(), Some("true".to_owned()));
        }
        self
    }

    /// The records the file holds, when Sluice wrote it.
    pub fn range(&self) -> Option<FileRange> {
        let tags = self.tags.as_ref()?;
        let tag = |key: &str| tags.get(key)?.as_deref();
        let range = FileRange {
            partition: tag(TAG_PARTITION)?.parse().ok()?,
            first: tag(TAG_FIRST)?.parse().ok()?,
            last: tag(TAG_LAST)?.parse().ok()?,
            last_time: tag(TAG_LAST_TIME).and_then(|t| t.parse().ok()),
            compacted: tag(TAG_COMPACTED) == Some("true"),
        };
        (range.first <= range.last).then_some(range)
    }
}

/// Delta's per-file statistics (PROTOCOL.md, "Per-file Statistics") of the
/// columns whose bounds the Parquet writer kept and Delta can compare:
/// integers as numbers, timestamps as ISO-8601 UTC text. Our timestamps are
/// whole milliseconds, so millisecond text bounds them exactly.
fn stats(file: &WrittenFile, schema: &Schema) -> Value {
    let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
    for column in &file.stats {
        let Ok(field) = schema.field_with_name(&column.column) else {
            continue;
        };
        let timestamp = match field.data_type() {
            DataType::Int32 | DataType::Int64 => false,
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => true,
            _ => continue,
        };
        let bound = |v: i64| -> Option<Value> {
            if !timestamp {
                return Some(json!(v));
            }
            let at = chrono::DateTime::from_timestamp_micros(v)?;
            Some(json!(
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ))
        };
        nulls.insert(column.column.clone(), json!(column.nulls));
        // No bounds when every value is null, or a bound has no text form.
        if let (Some(low), Some(high)) = (column.min.and_then(bound), column.max.and_then(bound)) {
            min.insert(column.column.clone(), low);
            max.insert(column.column.clone(), high);
        }
    }
    json!({"numRecords": file.rows, "minValues": min, "maxValues": max, "nullCount": nulls})
}

/// The lines of a commit: one action each, in order.
pub fn encode_commit(actions: &[Action]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for action in actions {
        serde_json::to_writer(&mut out, action)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// The actions of a commit's lines; a line that is not JSON is an error
/// (a half-written commit cannot exist: commits are put whole).
pub fn parse_commit(bytes: &[u8]) -> Result<Vec<Action>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", index + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ColumnStats;
    use arrow_schema::Field;

    #[test]
    fn actions_read_back_and_unknown_ones_are_ignored() {
        let text = concat!(
            r#"{"commitInfo":{"timestamp":1,"operation":"WRITE"}}"#,
            "\n",
            r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}"#,
            "\n",
            r#"{"txn":{"appId":"g-0","version":41,"lastUpdated":5}}"#,
            "\n",
            r#"{"cdc":{"path":"_change_data/x.parquet","partitionValues":{},"size":1,"dataChange":false}}"#,
            "\n",
            r#"{"add":{"path":"a%20b.parquet","partitionValues":{"p":null},"size":3,"modificationTime":4,"dataChange":true,"futureField":1}}"#,
            "\n"
        );
        let actions = parse_commit(text.as_bytes()).unwrap();
        assert_eq!(actions.len(), 5);
        assert_eq!(actions[1].protocol, Some(Protocol::sluice()));
        assert_eq!(actions[2].txn.as_ref().unwrap().version, 41);
        assert_eq!(actions[3], Action::default(), "cdc is not ours to read");
        let add = actions[4].add.as_ref().unwrap();
        assert_eq!(add.partition_values.get("p"), Some(&None));
        assert_eq!(add.range(), None, "no tags: not a file Sluice wrote");
        let again = parse_commit(&encode_commit(&actions).unwrap()).unwrap();
        assert_eq!(again, actions);
        assert!(parse_commit(b"{\"add\":").is_err());
    }

    #[test]
    fn an_add_says_which_records_it_holds_and_bounds_its_columns() {
        let schema = Schema::new(vec![
            Field::new("partition", DataType::Int32, false),
            Field::new("offset", DataType::Int64, false),
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::Int64, true),
        ]);
        let stat = |column: &str, min, max, nulls| ColumnStats {
            column: column.into(),
            min,
            max,
            nulls,
        };
        let file = WrittenFile {
            staging: Default::default(),
            key: "t/part-2-10-19-r.zstd.parquet".into(),
            partition: 2,
            first: 10,
            last: 19,
            rows: 9,
            bytes: 1234,
            dead_lettered: 1,
            dead_letters: None,
            stats: vec![
                stat("partition", Some(2), Some(2), 0),
                stat("offset", Some(1010), Some(1019), 0),
                stat(
                    "timestamp",
                    Some(1_700_000_000_000_000),
                    Some(1_700_000_000_005_000),
                    1,
                ),
                stat("n", None, None, 9),
                stat("not_in_schema", Some(1), Some(1), 0),
            ],
            location: None,
            late: 0,
            last_time: None,
        };
        let add = Add::of_file(
            &file,
            "part-2-10-19-r.zstd.parquet".into(),
            Some("_dead_letters/part-2-10-19-r.jsonl".into()),
            &schema,
            77,
        );
        assert_eq!(
            add.range(),
            Some(FileRange {
                partition: 2,
                first: 10,
                last: 19,
                last_time: None,
                compacted: false,
            })
        );
        let stats: Value = serde_json::from_str(add.stats.as_deref().unwrap()).unwrap();
        assert_eq!(
            stats,
            json!({
                "numRecords": 9,
                "minValues": {"partition": 2, "offset": 1010, "timestamp": "2023-11-14T22:13:20.000Z"},
                "maxValues": {"partition": 2, "offset": 1019, "timestamp": "2023-11-14T22:13:20.005Z"},
                "nullCount": {"partition": 0, "offset": 0, "timestamp": 1, "n": 9},
            })
        );
        assert_eq!((add.size, add.modification_time), (1234, 77));
    }
}
