//! `topics.json`: which topics to export and from where, with the exporter's
//! offset controls.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, parse_value, read_json};
use crate::kafka::{ReadPlan, Start};

/// One entry of the exporter's `topics.json`, plus Sluice's additions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TopicEntry {
    /// The Kafka topic to export.
    pub topic: String,
    /// The consumer group whose committed offsets a run starts from (when
    /// no offsets are given) and commits to (after the upload succeeded).
    pub group_id: String,
    /// Most records read from each partition; `null` reads to the end.
    #[serde(default)]
    pub num_messages: Option<u64>,
    /// Start from the earliest available offset instead of the group's.
    #[serde(default)]
    pub reset_offsets: bool,
    /// Explicit start offsets; only these partitions are read.
    #[serde(default)]
    pub starting_offsets: Option<BTreeMap<String, i64>>,
    /// Added to the offsets written to Parquet; Kafka reads real offsets.
    #[serde(default)]
    pub offset_increment: Option<BTreeMap<String, i64>>,
    /// Addition: how record values are decoded: `json` (the default:
    /// checked, written as text), `raw` (bytes as they are) or `avro`
    /// (Confluent-framed, through `schema_registry_url`, with typed columns).
    #[serde(default)]
    pub value_format: Option<ValueFormat>,
    /// Addition: an aggregator (a transform's name) run over the records
    /// of each export; its result is written beside the data.
    #[serde(default)]
    pub aggregator: Option<String>,
    /// Addition: what the export writes: `parquet` files named by their
    /// offsets (the default), or a `delta` table.
    #[serde(default)]
    pub format: ExportFormat,
    /// Addition: folders (or a Delta table's partitions) by each record's
    /// time, UTC: `hour` (`dt=2026-12-05/hour=14`) or `day`
    /// (`dt=2026-12-05`), each marked complete once every partition has
    /// passed it; unset: folders by Kafka partition.
    #[serde(default)]
    pub partition_by: Option<PartitionBy>,
    /// Addition: with `partition_by`, the top-level field of the value that
    /// holds each record's time (milliseconds since the Unix epoch, or RFC
    /// 3339 text) instead of its Kafka timestamp.
    #[serde(default)]
    pub time_field: Option<String>,
    /// Addition: with `partition_by`, where a record goes whose folder is
    /// already complete: `strict` (its own folder, the default), `current`
    /// (the folder being written) or `late` (the same folder under `_late/`;
    /// Parquet files only).
    #[serde(default)]
    pub late_data: Option<LateData>,
}

/// The time folders of a topic's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionBy {
    Hour,
    Day,
}

impl PartitionBy {
    /// As topics.json spells it.
    pub fn name(self) -> &'static str {
        match self {
            PartitionBy::Hour => "hour",
            PartitionBy::Day => "day",
        }
    }
}

/// Where a record goes whose time folder is already complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LateData {
    /// Its own folder, marker or not.
    #[default]
    Strict,
    /// The folder its partition is writing.
    Current,
    /// Its own folder under `_late/`, beside the export's.
    Late,
}

impl LateData {
    /// As topics.json spells it.
    pub fn name(self) -> &'static str {
        match self {
            LateData::Strict => "strict",
            LateData::Current => "current",
            LateData::Late => "late",
        }
    }
}

/// What a topic is exported as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// `topic=T/partition=P/T+P+<first>-<last>.parquet` files.
    #[default]
    Parquet,
    /// A Delta Lake table at `<topic>/` (reader version 1, writer version
    /// 2), exactly once through the table's log.
    Delta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// Confluent wire format: magic byte 0, schema id, Avro body.
    Avro,
    Json,
    Raw,
}

/// The largest `offset_increment` either way (2^62): added to any offset
/// Kafka hands out (far below 2^62), it stays within the column's i64.
pub const MAX_OFFSET_INCREMENT: u64 = 1 << 62;

impl TopicEntry {
    /// The read plan the entry describes. Explicit offsets win over
    /// `reset_offsets`, which wins over the group's committed offsets.
    pub fn read_plan(&self) -> ReadPlan {
        let offsets = self.starting_offsets();
        let start = if !offsets.is_empty() {
            Start::Offsets(offsets)
        } else if self.reset_offsets {
            Start::Earliest
        } else {
            Start::Committed
        };
        ReadPlan {
            topic: self.topic.clone(),
            group_id: self.group_id.clone(),
            start,
            max_per_partition: self.num_messages,
            offset_increment: self.offset_increment(),
        }
    }

    /// Start offsets by partition, checked.
    pub fn starting_offsets(&self) -> BTreeMap<i32, i64> {
        partition_map(self.starting_offsets.as_ref())
    }

    /// Offset adjustments by partition, checked.
    pub fn offset_increment(&self) -> BTreeMap<i32, i64> {
        partition_map(self.offset_increment.as_ref())
    }

    fn check(&self) -> Result<(), (String, String)> {
        if self.topic.trim().is_empty() {
            return Err(("topic".into(), "is empty".into()));
        }
        if self.group_id.trim().is_empty() {
            return Err(("group_id".into(), "is empty".into()));
        }
        for (field, map) in [
            ("starting_offsets", &self.starting_offsets),
            ("offset_increment", &self.offset_increment),
        ] {
            for (key, value) in map.iter().flatten() {
                match key.parse::<i32>() {
                    Ok(p) if p >= 0 => {}
                    _ => {
                        return Err((
                            format!("{field}.{key}"),
                            format!("`{key}` is not a partition number"),
                        ));
                    }
                }
                if field == "starting_offsets" && *value < 0 {
                    return Err((
                        format!("{field}.{key}"),
                        format!("offset {value} is negative"),
                    ));
                }
                if field == "offset_increment" && value.unsigned_abs() > MAX_OFFSET_INCREMENT {
                    return Err((
                        format!("{field}.{key}"),
                        format!(
                            "{value} would overflow the offset column: at most \
                             {MAX_OFFSET_INCREMENT} either way"
                        ),
                    ));
                }
            }
        }
        self.check_time_layout()
    }

    /// `time_field` and `late_data` need `partition_by`; a time field needs
    /// values that are JSON (or Avro, read as JSON); a Delta table keeps
    /// every record inside itself, so it has no `_late/` folder.
    fn check_time_layout(&self) -> Result<(), (String, String)> {
        if self.partition_by.is_none() {
            for (field, set) in [
                ("time_field", self.time_field.is_some()),
                ("late_data", self.late_data.is_some()),
            ] {
                if set {
                    return Err((
                        field.into(),
                        "needs `partition_by` (\"hour\" or \"day\")".into(),
                    ));
                }
            }
            return Ok(());
        }
        if let Some(field) = &self.time_field {
            if field.trim().is_empty() {
                return Err(("time_field".into(), "is empty".into()));
            }
            if self.value_format == Some(ValueFormat::Raw) {
                return Err((
                    "time_field".into(),
                    "needs values that are JSON or Avro, not `raw` bytes".into(),
                ));
            }
        }
        if self.late_data == Some(LateData::Late) && self.format == ExportFormat::Delta {
            return Err((
                "late_data".into(),
                "`late` writes beside the output, and a Delta table keeps every record in \
                 its log: use `strict` or `current`"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn partition_map(map: Option<&BTreeMap<String, i64>>) -> BTreeMap<i32, i64> {
    map.into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.parse().ok()?, *v)))
        .collect()
}

/// Two entries of one file that would write over each other: which ones,
/// and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entries {first} and {second} both export topic `{topic}` {reason}")]
pub struct EntryConflict {
    pub first: usize,
    pub second: usize,
    pub topic: String,
    pub reason: String,
}

/// Checks that no two entries write over each other. One topic may be
/// listed twice (files and a table side by side, as a move from one to the
/// other needs), as long as each entry has its own output, its own
/// consumer group and at most one of them an aggregator: otherwise one
/// entry's files or table would be rewritten by the other, one group's
/// commit would skip records the other has not written, or the two
/// aggregates of a run would share one name.
pub fn check_entries(entries: &[TopicEntry]) -> Result<(), EntryConflict> {
    for (second, b) in entries.iter().enumerate() {
        for (first, a) in entries.iter().enumerate().take(second) {
            if a.topic != b.topic {
                continue;
            }
            let reason = if a.format == b.format {
                Some(format!(
                    "as {}: they would write the same {}",
                    a.format.name(),
                    match a.format {
                        ExportFormat::Parquet => "files",
                        ExportFormat::Delta => "table",
                    }
                ))
            } else if a.group_id == b.group_id {
                Some(format!(
                    "with group `{}`: each entry needs its own group_id, or one \
                     entry's commit skips records the other has not written",
                    a.group_id
                ))
            } else if a.aggregator.is_some() && b.aggregator.is_some() {
                Some("with an aggregator: give the aggregator to one of them".to_owned())
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(EntryConflict {
                    first,
                    second,
                    topic: a.topic.clone(),
                    reason,
                });
            }
        }
    }
    Ok(())
}

impl ExportFormat {
    /// As topics.json spells it.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "parquet",
            ExportFormat::Delta => "delta",
        }
    }
}

/// Reads `topics.json`: a JSON array of entries.
pub fn read_topics(path: &Path) -> Result<Vec<TopicEntry>, ConfigError> {
    let (entries, _): (Vec<serde_json::Value>, _) = read_json(path)?;
    let entries: Vec<TopicEntry> = entries
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let name = value.get("topic").and_then(|t| t.as_str());
            let at = match name {
                Some(name) => format!("entry {index} (topic `{name}`)"),
                None => format!("entry {index}"),
            };
            let entry: TopicEntry = parse_value(path, value, at.clone())?;
            entry
                .check()
                .map_err(|(field, reason)| ConfigError::Field {
                    file: path.to_owned(),
                    location: format!("{at}, field `{field}`"),
                    reason,
                })?;
            Ok(entry)
        })
        .collect::<Result<_, ConfigError>>()?;
    check_entries(&entries).map_err(|conflict| ConfigError::Field {
        file: path.to_owned(),
        location: format!("entries {} and {}", conflict.first, conflict.second),
        reason: conflict.to_string(),
    })?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<TopicEntry>, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topics.json");
        std::fs::write(&path, text).unwrap();
        read_topics(&path)
    }

    #[test]
    fn the_seeds_example_reads_as_is() {
        let entries = read(
            r#"[
  {
    "topic": "example_topic_1",
    "group_id": "consumer_group_1",
    "num_messages": 100,
    "reset_offsets": false,
    "starting_offsets": null,
    "offset_increment": { "0": 0 }
  },
  {
    "topic": "example_topic_2",
    "group_id": "consumer_group_2",
    "num_messages": 50,
    "reset_offsets": true,
    "starting_offsets": { "0": 100, "1": 200 },
    "offset_increment": { "0": 10, "1": 20 }
  }
]"#,
        )
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].num_messages, Some(100));
        assert!(entries[0].starting_offsets().is_empty());
        assert_eq!(
            entries[1].starting_offsets(),
            BTreeMap::from([(0, 100), (1, 200)])
        );
        assert_eq!(
            entries[1].offset_increment(),
            BTreeMap::from([(0, 10), (1, 20)])
        );
        assert!(entries[1].reset_offsets);
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let error = read(r#"[{"topic": "a", "group_id": "g"}, {"topic": "orders", "group_id": "g", "num_messages": "ten"}]"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("topics.json"), "{error}");
        assert!(error.contains("entry 1 (topic `orders`)"), "{error}");
        assert!(error.contains("field `num_messages`"), "{error}");

        let error =
            read(r#"[{"topic": "orders", "group_id": "g", "starting_offsets": {"zero": 5}}]"#)
                .unwrap_err()
                .to_string();
        assert!(error.contains("field `starting_offsets.zero`"), "{error}");

        let error =
            read(r#"[{"topic": "orders", "group_id": "g", "starting_offsets": {"0": -5}}]"#)
                .unwrap_err()
                .to_string();
        assert!(error.contains("negative"), "{error}");

        let error = read(&format!(
            r#"[{{"topic": "orders", "group_id": "g", "offset_increment": {{"0": {}}}}}]"#,
            i64::MAX
        ))
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("field `offset_increment.0`") && error.contains("overflow"),
            "{error}"
        );
        let at_most = MAX_OFFSET_INCREMENT as i64;
        for value in [at_most, -at_most] {
            let text = format!(
                r#"[{{"topic": "o", "group_id": "g", "offset_increment": {{"0": {value}}}}}]"#
            );
            assert!(read(&text).is_ok(), "{value} is allowed");
        }

        let error = read(r#"[{"group_id": "g"}]"#).unwrap_err().to_string();
        assert!(
            error.contains("entry 0") && error.contains("topic"),
            "{error}"
        );

        let error = read(r#"{"topic": "x"}"#).unwrap_err().to_string();
        assert!(error.contains("expected a sequence"), "{error}");
    }

    #[test]
    fn one_topic_twice_is_allowed_only_with_its_own_output_group_and_aggregate() {
        let allowed = read(
            r#"[{"topic": "t", "group_id": "files"},
                {"topic": "u", "group_id": "files"},
                {"topic": "t", "group_id": "table", "format": "delta", "aggregator": "a"}]"#,
        )
        .unwrap();
        assert_eq!(allowed.len(), 3);
        for (text, expected) in [
            (
                r#"[{"topic": "t", "group_id": "a"}, {"topic": "t", "group_id": "b"}]"#,
                "entries 0 and 1 both export topic `t` as parquet",
            ),
            (
                r#"[{"topic": "x", "group_id": "a"}, {"topic": "t", "group_id": "a", "format": "delta"},
                    {"topic": "t", "group_id": "b", "format": "delta"}]"#,
                "entries 1 and 2 both export topic `t` as delta",
            ),
            (
                r#"[{"topic": "t", "group_id": "g"}, {"topic": "t", "group_id": "g", "format": "delta"}]"#,
                "with group `g`",
            ),
            (
                r#"[{"topic": "t", "group_id": "a", "aggregator": "s"},
                    {"topic": "t", "group_id": "b", "format": "delta", "aggregator": "s"}]"#,
                "with an aggregator",
            ),
        ] {
            let error = read(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            assert!(error.contains("topics.json"), "{error}");
        }
    }

    #[test]
    fn value_format_is_an_addition() {
        let entries = read(r#"[{"topic": "t", "group_id": "g", "value_format": "json"}]"#).unwrap();
        assert_eq!(entries[0].value_format, Some(ValueFormat::Json));
        assert_eq!(entries[0].format, ExportFormat::Parquet);
    }

    #[test]
    fn format_delta_is_an_addition_and_other_formats_are_refused() {
        let entries = read(r#"[{"topic": "t", "group_id": "g", "format": "delta"}]"#).unwrap();
        assert_eq!(entries[0].format, ExportFormat::Delta);
        let error = read(r#"[{"topic": "t", "group_id": "g", "format": "iceberg"}]"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("field `format`") || error.contains("iceberg"),
            "{error}"
        );
    }

    #[test]
    fn time_partitions_are_an_addition_whose_settings_are_checked_by_name() {
        let entries = read(
            r#"[{"topic": "t", "group_id": "g", "partition_by": "hour", "time_field": "at", "late_data": "late"},
                {"topic": "u", "group_id": "g", "partition_by": "day", "format": "delta"}]"#,
        )
        .unwrap();
        assert_eq!(entries[0].partition_by, Some(PartitionBy::Hour));
        assert_eq!(entries[0].time_field.as_deref(), Some("at"));
        assert_eq!(entries[0].late_data, Some(LateData::Late));
        assert_eq!(entries[1].partition_by, Some(PartitionBy::Day));
        assert_eq!(entries[1].late_data, None, "strict unless said");
        for (text, field, says) in [
            (
                r#"[{"topic": "t", "group_id": "g", "partition_by": "week"}]"#,
                "partition_by",
                "week",
            ),
            (
                r#"[{"topic": "t", "group_id": "g", "time_field": "at"}]"#,
                "field `time_field`",
                "needs `partition_by`",
            ),
            (
                r#"[{"topic": "t", "group_id": "g", "late_data": "late"}]"#,
                "field `late_data`",
                "needs `partition_by`",
            ),
            (
                r#"[{"topic": "t", "group_id": "g", "partition_by": "hour", "time_field": "at", "value_format": "raw"}]"#,
                "field `time_field`",
                "not `raw` bytes",
            ),
            (
                r#"[{"topic": "t", "group_id": "g", "partition_by": "hour", "time_field": " "}]"#,
                "field `time_field`",
                "is empty",
            ),
            (
                r#"[{"topic": "t", "group_id": "g", "partition_by": "hour", "format": "delta", "late_data": "late"}]"#,
                "field `late_data`",
                "use `strict` or `current`",
            ),
        ] {
            let error = read(text).unwrap_err().to_string();
            assert!(error.contains(field) && error.contains(says), "{error}");
        }
    }
}
