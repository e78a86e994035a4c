//! Which of the export's files hold a partition's offsets `from..to`,
//! found by offset range: a Parquet export's names under the partition's
//! folder, a time layout's range records under `_ranges/` (each naming
//! the files of its unit, in whatever hour folders), or a Delta table's
//! log, whose `add` actions carry the partition and offsets of each file.
//! A partition's folder is listed within the request's time; the range
//! records and the table's log are read through the export's own readers,
//! which wait for the store's answer.

use std::time::Instant;

use super::{Lake, LakeError, Layout};
use crate::export::{self, Snapshot, StoredRanges};

/// The stored files of one range of offsets `first..=last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeFile {
    /// Its data files' keys: one, or a time layout's unit's several.
    pub keys: Vec<String>,
    pub first: i64,
    pub last: i64,
    /// What named the file: told when it is gone.
    pub named_by: &'static str,
}

/// The files of `topic` partition `partition` that hold any of
/// `from..to`, by first offset, none overlapping.
pub(super) fn overlapping(
    lake: &Lake,
    layout: Layout,
    topic: &str,
    partition: i32,
    (from, to): (i64, i64),
    deadline: Option<Instant>,
) -> Result<Vec<LakeFile>, LakeError> {
    let overlaps = |first: i64, last: i64| first < to && from <= last;
    let mut found = match layout {
        Layout::Files => lake
            .within(
                deadline,
                lake.storage
                    .store()
                    .list(&export::data_dir(topic, partition)),
            )?
            .map_err(|e| lake.unavailable(e))?
            .files
            .into_iter()
            .filter_map(|key| {
                let (first, last) = export::range_of(&key, topic, partition, export::DATA)?;
                Some(LakeFile {
                    keys: vec![key],
                    first,
                    last,
                    named_by: "its name",
                })
            })
            .collect::<Vec<_>>(),
        Layout::FilesByTime => {
            let ranges = StoredRanges::load(&lake.storage, topic, partition)
                .map_err(|e| range_error(lake, e))?;
            let mut files = Vec::new();
            for unit in ranges.overlapping(from, to) {
                let record = ranges
                    .read(&lake.storage, unit)
                    .map_err(|e| range_error(lake, e))?;
                files.push(LakeFile {
                    keys: record.files.into_iter().map(|f| f.key).collect(),
                    first: unit.first,
                    last: unit.last,
                    named_by: "its range record",
                });
            }
            files
        }
        Layout::Table => {
            let staging = tempfile::tempdir().map_err(|e| LakeError::Unreadable {
                store: lake.store().to_owned(),
                key: export::delta_log(topic),
                reason: format!("no temporary folder for its checkpoint: {e}"),
            })?;
            let snapshot = Snapshot::load(&lake.storage, topic, staging.path())
                .map_err(|e| delta_error(lake, topic, e))?;
            snapshot
                .files_of(partition)
                .into_iter()
                .map(|file| LakeFile {
                    keys: vec![format!("{}/{}", export::delta_table(topic), file.key)],
                    first: file.first,
                    last: file.last,
                    named_by: "the table's log",
                })
                .collect()
        }
    };
    found.retain(|f| overlaps(f.first, f.last));
    found.sort_by_key(|f| (f.first, std::cmp::Reverse(f.last)));
    // A file within another was superseded by it (a re-export stopped
    // before removing it): each offset is read once, from the wider file.
    let mut kept: Vec<LakeFile> = Vec::with_capacity(found.len());
    for file in found {
        match kept.last() {
            Some(previous) if file.first <= previous.last => {}
            _ => kept.push(file),
        }
    }
    Ok(kept)
}

fn range_error(lake: &Lake, error: export::RangeError) -> LakeError {
    match error {
        export::RangeError::Storage(source) => lake.unavailable(source),
        export::RangeError::Corrupt { key, reason } => LakeError::Unreadable {
            store: lake.store().to_owned(),
            key,
            reason,
        },
        other => LakeError::Unreadable {
            store: lake.store().to_owned(),
            key: "_ranges".into(),
            reason: other.to_string(),
        },
    }
}

fn delta_error(lake: &Lake, topic: &str, error: export::DeltaError) -> LakeError {
    match error {
        export::DeltaError::Storage(source) => lake.unavailable(source),
        other => LakeError::Unreadable {
            store: lake.store().to_owned(),
            key: export::delta_log(topic),
            reason: other.to_string(),
        },
    }
}
