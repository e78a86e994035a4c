//! Compaction: the small files of complete time buckets merged, at the end
//! of a run, into one file per bucket and partition (up to the target
//! size). A timer run every few minutes leaves one unit per partition per
//! run; once every bucket of consecutive units is complete, the units are
//! merged into one whose files, one per bucket, are named by the merged
//! range. Merging is an operation on units, never on single files, so that
//! a range of offsets stays held by one unit (the resume decision and
//! re-exports work on units), and a merged unit is never merged again (no
//! record is rewritten more than once).
//!
//! The plan is pure (`plan`); the Parquet files are merged here, through the
//! range records' journal, so that a crash at any step loses or doubles
//! nothing: the new files are stored first, then the decision, then the old
//! files are removed. A Delta table's are merged in `compact_table.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::buckets::Location;
use super::error::ExportError;
use super::layout::FileNames;
use super::options::ExportOptions;
use super::partition_file::PartitionFile;
use super::ranges::{Journal, RangeFile, RangeRecord, Replaced, StoredRanges, Unit, read_all};
use super::upload::{ToStore, store_all};
use super::written::WrittenFile;
use crate::config::PartitionBy;
use crate::storage::Storage;

/// What compaction needs to know of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitView {
    pub first: i64,
    pub last: i64,
    /// Made by a compaction already.
    pub compacted: bool,
    /// Every bucket of its files is complete.
    pub closed: bool,
    /// Its files' locations (a bucket's folder) and sizes.
    pub files: Vec<(String, u64)>,
}

/// Which units to merge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Runs of consecutive units, each merged into one.
    pub groups: Vec<Range<usize>>,
    /// The offset after the last of the leading complete units: nothing
    /// before it will be merged by a later run (but late records).
    pub settled: Option<i64>,
}

/// The leading units whose buckets are all complete, grouped: a group is
/// consecutive units not merged before, each sharing a bucket with the
/// ones before it in the group, whose files of each bucket add up to at
/// most `target` bytes; it is merged when that leaves fewer files.
pub fn plan(units: &[UnitView], target: u64) -> Plan {
    let closed = units.iter().take_while(|u| u.closed).count();
    let settled = closed
        .checked_sub(1)
        .and_then(|i| units.get(i))
        .map(|u| u.last + 1);
    let mut groups = Vec::new();
    let mut i = 0;
    while i < closed {
        if units[i].compacted {
            i += 1;
            continue;
        }
        let start = i;
        // By location: bytes and files so far.
        let mut sizes: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
        for (location, bytes) in &units[i].files {
            let size = sizes.entry(location).or_default();
            *size = (size.0 + bytes, size.1 + 1);
        }
        i += 1;
        while let Some(next) = units.get(i).filter(|u| i < closed && !u.compacted) {
            let shares = next
                .files
                .iter()
                .any(|(l, _)| sizes.contains_key(l.as_str()));
            let fits = next.files.iter().all(|(l, bytes)| {
                sizes
                    .get(l.as_str())
                    .map_or(0, |s| s.0)
                    .saturating_add(*bytes)
                    <= target
            });
            if !shares || !fits {
                break;
            }
            for (location, bytes) in &next.files {
                let size = sizes.entry(location).or_default();
                *size = (size.0 + bytes, size.1 + 1);
            }
            i += 1;
        }
        if i - start >= 2 && sizes.values().any(|(_, files)| *files >= 2) {
            groups.push(start..i);
        }
    }
    Plan { groups, settled }
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Files merged into others, and removed.
    pub files_in: usize,
    /// Files the merges wrote.
    pub files_out: usize,
    pub bytes_out: u64,
    /// Groups left alone (their files' columns differ).
    pub skipped: usize,
}

impl CompactReport {
    pub fn add(&mut self, other: &CompactReport) {
        self.files_in += other.files_in;
        self.files_out += other.files_out;
        self.bytes_out += other.bytes_out;
        self.skipped += other.skipped;
    }
}

/// Stores a compaction's merged files, which have no dead letters of
/// their own to go first, between the two crash points a compaction is
/// tried at (before any merged file is stored, and once all are).
pub fn store_merged(
    storage: &Storage,
    topic: &str,
    merged: &[WrittenFile],
    concurrency: usize,
) -> Result<(), ExportError> {
    crate::crash_point!("compact::before-store");
    let to_store: Vec<ToStore<'_>> = merged
        .iter()
        .map(|file| ToStore {
            file,
            had_dead_letters: false,
        })
        .collect();
    store_all(storage, topic, &to_store, concurrency)?;
    crate::crash_point!("compact::after-store");
    Ok(())
}

/// The location a range file names.
fn location(by: PartitionBy, file: &RangeFile) -> Option<Location> {
    Some(Location {
        bucket: by.parse(&file.bucket)?,
        late: file.late,
    })
}

/// Merges the small files of one partition's complete units (those ending
/// at or after `from`; `closed` says whether a bucket is complete).
/// Returns what it did and how far the partition is settled.
#[allow(clippy::too_many_arguments)]
pub fn compact_partition(
    storage: &Storage,
    topic: &str,
    options: &ExportOptions,
    by: PartitionBy,
    staging: &Path,
    held: &StoredRanges,
    from: i64,
    closed: &dyn Fn(&str) -> bool,
    journal: &mut Journal,
) -> Result<(CompactReport, Option<i64>), ExportError> {
    let units: Vec<((i64, i64), RangeRecord)> =
        read_all(storage, held, from)?.into_iter().collect();
    let views: Vec<UnitView> = units
        .iter()
        .map(|((first, last), record)| UnitView {
            first: *first,
            last: *last,
            compacted: record.compacted,
            // A late file's bucket was complete when it was written.
            closed: record.files.iter().all(|f| f.late || closed(&f.bucket)),
            files: record
                .files
                .iter()
                .map(|f| (location_id(f), f.bytes))
                .collect(),
        })
        .collect();
    let plan = plan(&views, options.target_file_bytes);
    let mut report = CompactReport::default();
    let partition = held.partition();
    for group in plan.groups {
        let Some(members) = units.get(group) else {
            continue;
        };
        report.add(&merge(
            storage, topic, options, by, staging, partition, members, journal,
        )?);
    }
    Ok((report, plan.settled))
}

fn location_id(file: &RangeFile) -> String {
    if file.late {
        format!("_late/{}", file.bucket)
    } else {
        file.bucket.clone()
    }
}

/// Merges one group of consecutive units into one unit, one file per
/// location, through the journal.
#[allow(clippy::too_many_arguments)]
fn merge(
    storage: &Storage,
    topic: &str,
    options: &ExportOptions,
    by: PartitionBy,
    staging: &Path,
    partition: i32,
    members: &[((i64, i64), RangeRecord)],
    journal: &mut Journal,
) -> Result<CompactReport, ExportError> {
    let (Some(((first, _), _)), Some(((_, last), newest))) = (members.first(), members.last())
    else {
        return Ok(CompactReport::default());
    };
    let (first, last) = (*first, *last);
    let dir = staging.join(format!("compact-{partition}-{first}"));
    // Each location's files in offset order, with the last offset of the
    // unit each comes from.
    let mut by_location: BTreeMap<String, Vec<(&RangeFile, i64)>> = BTreeMap::new();
    for ((_, unit_last), record) in members {
        for file in &record.files {
            by_location
                .entry(location_id(file))
                .or_default()
                .push((file, *unit_last));
        }
    }
    let names = FileNames::Buckets {
        run_id: journal.run().to_owned(),
        by,
    };
    let mut merged = Vec::new();
    for sources in by_location.values() {
        let Some(at) = sources.first().and_then(|(f, _)| location(by, f)) else {
            continue;
        };
        let sources: Vec<Source<'_>> = sources
            .iter()
            .map(|(file, last)| Source {
                key: &file.key,
                dead_letters: file.dead_letters.as_deref(),
                last: *last,
            })
            .collect();
        let merged_file = merge_location(
            storage,
            topic,
            options,
            by,
            &dir,
            (partition, first),
            at,
            &sources,
        )?;
        match merged_file {
            Some(file) => merged.push(file.finish(&names, last)?),
            None => {
                let _ = std::fs::remove_dir_all(&dir);
                tracing::warn!(
                    topic,
                    partition,
                    first,
                    last,
                    "files of one bucket have different columns: left as they are"
                );
                return Ok(CompactReport {
                    skipped: 1,
                    ..CompactReport::default()
                });
            }
        }
    }
    let unit = Unit {
        partition,
        first,
        last,
        record: RangeRecord {
            run: journal.run().to_owned(),
            files: merged.iter().map(|f| RangeFile::of(f, by)).collect(),
            last_time: newest.last_time,
            compacted: true,
        },
    };
    let replaces: Vec<Replaced> = members
        .iter()
        .map(|(range, record)| Replaced::of(partition, *range, record))
        .collect();
    let files_in = members.iter().map(|(_, r)| r.files.len()).sum();
    journal.storing(storage, std::slice::from_ref(&unit))?;
    store_merged(storage, topic, &merged, options.upload_concurrency)?;
    journal.decide(storage, vec![unit], replaces)?;
    let _ = std::fs::remove_dir_all(&dir);
    tracing::info!(
        topic,
        partition,
        first,
        last,
        files_in,
        files_out = merged.len(),
        "compacted the files of complete buckets"
    );
    Ok(CompactReport {
        files_in,
        files_out: merged.len(),
        bytes_out: merged.iter().map(|f| f.bytes).sum(),
        skipped: 0,
    })
}

/// A file to merge: its key, its dead letters' key, and the last offset
/// of the unit it comes from.
pub(super) struct Source<'a> {
    pub key: &'a str,
    pub dead_letters: Option<&'a str>,
    pub last: i64,
}

/// One location's files merged into one open file (not yet finished),
/// starting at offset `first`; `None` when their columns differ.
#[allow(clippy::too_many_arguments)]
pub(super) fn merge_location(
    storage: &Storage,
    topic: &str,
    options: &ExportOptions,
    by: PartitionBy,
    dir: &Path,
    (partition, first): (i32, i64),
    location: Location,
    sources: &[Source<'_>],
) -> Result<Option<PartitionFile>, ExportError> {
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut out: Option<PartitionFile> = None;
    let mut late = 0u64;
    let mut schemas = BTreeSet::new();
    for (index, source) in sources.iter().enumerate() {
        let local = dir.join(format!("source-{index}.parquet"));
        storage.download(source.key, &local)?;
        let parquet_error = |reason: String| ExportError::Parquet {
            path: local.clone(),
            reason,
        };
        let file = std::fs::File::open(&local).map_err(|e| ExportError::Io {
            path: local.clone(),
            source: e,
        })?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| parquet_error(e.to_string()))?;
        late += builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .into_iter()
            .flatten()
            .find(|kv| kv.key == "sluice.late_records")
            .and_then(|kv| kv.value.as_deref()?.parse::<u64>().ok())
            .unwrap_or(0);
        // Metadata aside, the columns must be the same.
        let columns = arrow_schema::Schema::new(builder.schema().fields().clone());
        schemas.insert(format!("{columns:?}"));
        if schemas.len() > 1 {
            let _ = std::fs::remove_file(&local);
            return Ok(None);
        }
        let target = match &mut out {
            Some(target) => target,
            None => {
                let mut file = PartitionFile::create_at(
                    dir,
                    topic,
                    partition,
                    (0, first),
                    std::sync::Arc::new(columns.clone()),
                    Some(location),
                )?;
                file.note("sluice.partition_by", by.name());
                file.note("sluice.bucket", by.path(location.bucket));
                if let Some(layout) = &options.time {
                    file.note("sluice.late_data", layout.late.name());
                }
                file.note("sluice.compacted_from", sources.len().to_string());
                out.insert(file)
            }
        };
        let reader = builder.build().map_err(|e| parquet_error(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| parquet_error(e.to_string()))?;
            target.write(&batch, source.last)?;
        }
        if let Some(key) = source.dead_letters {
            target.append_dead_letters(&storage.get(key)?)?;
        }
        let _ = std::fs::remove_file(&local);
    }
    if let Some(out) = &mut out {
        out.add_late(late);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(first: i64, last: i64, closed: bool, files: &[(&str, u64)]) -> UnitView {
        UnitView {
            first,
            last,
            compacted: false,
            closed,
            files: files.iter().map(|(l, b)| ((*l).to_owned(), *b)).collect(),
        }
    }

    /// A case: units, the target size, the groups and how far settled.
    type Case = (
        &'static str,
        Vec<UnitView>,
        u64,
        Vec<Range<usize>>,
        Option<i64>,
    );

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // a list of groups, one of them
    fn the_units_merged_are_the_complete_ones_of_shared_buckets() {
        let (h13, h14) = ("dt=x/hour=13", "dt=x/hour=14");
        let cases: Vec<Case> = vec![
            ("nothing", vec![], 100, vec![], None),
            (
                "the runs of a complete hour become one unit",
                vec![
                    unit(0, 9, true, &[(h13, 10)]),
                    unit(10, 19, true, &[(h13, 10)]),
                    unit(20, 29, true, &[(h13, 10)]),
                    unit(30, 39, false, &[(h14, 10)]),
                ],
                100,
                vec![0..3],
                Some(30),
            ),
            (
                "units of different buckets are not merged for nothing",
                vec![
                    unit(0, 9, true, &[(h13, 10)]),
                    unit(10, 19, true, &[(h14, 10)]),
                ],
                100,
                vec![],
                Some(20),
            ),
            (
                "each bucket's run of units is its own group",
                vec![
                    unit(0, 9, true, &[(h13, 10)]),
                    unit(10, 19, true, &[(h13, 10)]),
                    unit(20, 29, true, &[(h14, 10)]),
                    unit(30, 39, true, &[(h14, 10)]),
                ],
                100,
                vec![0..2, 2..4],
                Some(40),
            ),
            (
                "a unit straddling two buckets joins them",
                vec![
                    unit(0, 9, true, &[(h13, 10)]),
                    unit(10, 19, true, &[(h13, 1), (h14, 9)]),
                    unit(20, 29, true, &[(h14, 10)]),
                ],
                100,
                vec![0..3],
                Some(30),
            ),
            (
                "a group stops at the target size",
                vec![
                    unit(0, 9, true, &[(h13, 40)]),
                    unit(10, 19, true, &[(h13, 40)]),
                    unit(20, 29, true, &[(h13, 40)]),
                    unit(30, 39, true, &[(h13, 40)]),
                ],
                100,
                vec![0..2, 2..4],
                Some(40),
            ),
            (
                "nothing after a bucket still open, even complete",
                vec![
                    unit(0, 9, false, &[(h14, 10)]),
                    unit(10, 19, true, &[(h13, 10)]),
                    unit(20, 29, true, &[(h13, 10)]),
                ],
                100,
                vec![],
                None,
            ),
            (
                "a merged unit is not merged again",
                vec![
                    UnitView {
                        compacted: true,
                        ..unit(0, 19, true, &[(h13, 10)])
                    },
                    unit(20, 29, true, &[(h13, 10)]),
                    unit(30, 39, true, &[(h13, 10)]),
                ],
                100,
                vec![1..3],
                Some(40),
            ),
        ];
        for (case, units, target, groups, settled) in cases {
            assert_eq!(plan(&units, target), Plan { groups, settled }, "{case}");
        }
    }
}
