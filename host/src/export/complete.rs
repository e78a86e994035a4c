//! Completeness: when every Kafka partition has passed a time bucket, the
//! bucket gets a marker, `_complete/topic=T/dt=…/hour=…`, stored once and
//! never rewritten, so that downstream jobs wait on it instead of
//! guessing. How far the output is complete (`complete_through`, a time:
//! every bucket ending at or before it is complete) only moves forward; it
//! is kept, with how far markers were written, in `_state.json` beside the
//! markers. The state is written before the markers it promises and again
//! after them, so a run that stops in between leaves the next one the
//! markers still to write.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::buckets::Bucket;
use super::error::ExportError;
use super::layout;
use crate::config::{ExportFormat, PartitionBy};
use crate::storage::Storage;

/// How far a partition has got, for completeness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The time of its last record exported (by offset), if any.
    pub last_time: Option<i64>,
    /// Whether everything it held when the run started is exported.
    pub caught_up: bool,
}

/// The time every partition has passed: the earliest last time of the
/// partitions still behind; a partition with nothing left to export holds
/// nothing back (it counts as having passed as far as the furthest one).
/// `None` when nothing can be said: no partition has exported a record, or
/// one still behind has exported none.
pub fn watermark(positions: &[Position]) -> Option<i64> {
    let mut behind = positions.iter().filter(|p| !p.caught_up).peekable();
    if behind.peek().is_some() {
        return behind
            .map(|p| p.last_time)
            .try_fold(i64::MAX, |low, t| t.map(|t| low.min(t)));
    }
    positions.iter().filter_map(|p| p.last_time).max()
}

/// What `_state.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// `hour` or `day`: the output's folders, which a topics.json entry
    /// cannot change under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
    /// Every bucket ending at or before this time is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_through: Option<i64>,
    /// Markers are stored for every complete bucket ending at or before
    /// this (from `first_bucket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_through: Option<i64>,
    /// The start of the earliest bucket any on-time record went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bucket: Option<i64>,
    /// The start of the newest bucket any record went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_bucket: Option<i64>,
    /// By Kafka partition.
    #[serde(default)]
    pub partitions: BTreeMap<i32, PartitionState>,
}

/// What the state keeps of a partition: a cache of what its newest range
/// says, and how far compaction has looked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The offset after the last one exported.
    pub next: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_time: Option<i64>,
    /// Units ending before this offset are in complete buckets and merged
    /// as far as they will be: compaction does not read them again.
    #[serde(default)]
    pub settled: i64,
}

impl State {
    pub fn load(storage: &Storage, topic: &str, format: ExportFormat) -> Result<Self, ExportError> {
        let key = layout::complete_state_key(topic, format);
        match storage.get_if_exists(&key)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| ExportError::Corrupt {
                key,
                reason: e.to_string(),
            }),
            None => Ok(State::default()),
        }
    }

    /// Refuses an output already partitioned otherwise.
    pub fn check(&self, topic: &str, by: PartitionBy) -> Result<(), ExportError> {
        match &self.partition_by {
            Some(stored) if stored != by.name() => Err(ExportError::Corrupt {
                key: format!("the output of topic {topic}"),
                reason: format!(
                    "it is partitioned by {stored}, and the topics.json entry says {}: \
                     export to another folder to change it",
                    by.name()
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Replaces the stored state (a staging file moved into place whole).
    pub fn store(
        &self,
        storage: &Storage,
        topic: &str,
        format: ExportFormat,
        staging: &Path,
    ) -> Result<(), ExportError> {
        std::fs::create_dir_all(staging).map_err(|source| ExportError::Io {
            path: staging.to_owned(),
            source,
        })?;
        let local = staging.join("_state.json");
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        std::fs::write(&local, bytes).map_err(|source| ExportError::Io {
            path: local.clone(),
            source,
        })?;
        storage.upload(&local, &layout::complete_state_key(topic, format))?;
        Ok(())
    }
}

/// What one run did to completeness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completeness {
    pub complete_through: Option<i64>,
    /// Markers this run stored, by bucket folder.
    pub marked: Vec<String>,
}

/// Stores the markers of the complete buckets from `from` (a bucket
/// boundary) through `through`, each only if it is not there yet. Returns
/// the folders of the ones this call created.
pub fn store_markers(
    storage: &Storage,
    (topic, format, by): (&str, ExportFormat, PartitionBy),
    (from, through): (i64, i64),
    run_id: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<Vec<String>, ExportError> {
    let mut created = Vec::new();
    for bucket in by.ending_by(from, through) {
        let path = by.path(bucket);
        let marker = marker(topic, by, bucket, run_id, through, offsets);
        crate::crash_point!("complete::before-marker");
        if storage.put_if_absent(&layout::marker_key(topic, format, by, bucket), marker)? {
            created.push(path);
        }
    }
    Ok(created)
}

fn marker(
    topic: &str,
    by: PartitionBy,
    bucket: Bucket,
    run_id: &str,
    through: i64,
    offsets: &BTreeMap<i32, i64>,
) -> Bytes {
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    Bytes::from(
        json!({
            "topic": topic,
            "bucket": by.path(bucket),
            "start": iso(bucket.start),
            "end": iso(by.end(bucket)),
            "complete_through": iso(through),
            "run_id": run_id,
            "next_offsets": offsets,
        })
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(last_time: Option<i64>, caught_up: bool) -> Position {
        Position {
            last_time,
            caught_up,
        }
    }

    #[test]
    fn the_watermark_is_where_every_partition_has_got() {
        let cases: Vec<(&str, Vec<Position>, Option<i64>)> = vec![
            ("no partition", vec![], None),
            (
                "the slowest partition still behind",
                vec![at(Some(50), false), at(Some(30), false), at(Some(90), true)],
                Some(30),
            ),
            (
                "a partition with nothing left does not hold the others back",
                vec![at(Some(10), true), at(Some(70), false)],
                Some(70),
            ),
            (
                "all caught up: as far as the furthest",
                vec![at(Some(10), true), at(Some(70), true), at(None, true)],
                Some(70),
            ),
            (
                "one behind that exported nothing yet: nothing known",
                vec![at(None, false), at(Some(70), false)],
                None,
            ),
            ("nothing exported anywhere", vec![at(None, true)], None),
        ];
        for (case, positions, expected) in cases {
            assert_eq!(watermark(&positions), expected, "{case}");
        }
    }

    #[test]
    fn a_marker_is_stored_once_and_never_rewritten() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path().to_str().unwrap(), &Default::default()).unwrap();
        let by = PartitionBy::Hour;
        let hour = 3_600_000;
        let key = (("t", ExportFormat::Parquet, by), (0, 3 * hour));
        let made =
            store_markers(&storage, key.0, key.1, "run-1", &BTreeMap::from([(0, 5)])).unwrap();
        assert_eq!(
            made,
            [
                "dt=1970-01-01/hour=00",
                "dt=1970-01-01/hour=01",
                "dt=1970-01-01/hour=02"
            ]
        );
        let first = storage
            .get("_complete/topic=t/dt=1970-01-01/hour=01")
            .unwrap();
        let again =
            store_markers(&storage, key.0, (0, 4 * hour), "run-2", &BTreeMap::new()).unwrap();
        assert_eq!(again, ["dt=1970-01-01/hour=03"], "only the new one");
        assert_eq!(
            storage
                .get("_complete/topic=t/dt=1970-01-01/hour=01")
                .unwrap(),
            first,
            "never rewritten"
        );
        let text: serde_json::Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(text["end"], "1970-01-01T02:00:00.000Z");
        assert_eq!(text["run_id"], "run-1");
    }

    #[test]
    fn an_output_keeps_the_folders_it_has() {
        let state = State {
            partition_by: Some("hour".into()),
            ..State::default()
        };
        assert!(state.check("t", PartitionBy::Hour).is_ok());
        let error = state.check("t", PartitionBy::Day).unwrap_err().to_string();
        assert!(error.contains("partitioned by hour"), "{error}");
    }
}
