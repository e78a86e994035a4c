//! What a time-partitioned run does once its files are in place: how far
//! every partition has got (the time of each one's last exported record,
//! from the storage's own record), which buckets that completes, the
//! compaction of complete buckets' small files, then the markers, so that
//! a bucket's marker appears once its files are merged.

use std::collections::BTreeMap;
use std::path::Path;

use super::compact::{CompactReport, compact_partition};
use super::complete::{Completeness, PartitionState, Position, State, store_markers, watermark};
use super::error::ExportError;
use super::options::ExportOptions;
use super::ranges::{Journal, StoredRanges, Unit};
use super::written::WrittenFile;
use crate::config::{ExportFormat, PartitionBy};
use crate::kafka::PartitionRange;
use crate::storage::Storage;

/// What the end of a time-partitioned run did.
#[derive(Debug, Clone, Default)]
pub struct TimeReport {
    pub completeness: Completeness,
    pub compaction: CompactReport,
}

/// Where each partition is after the run: its next offset and the time of
/// its last exported record, by partition.
pub type Reached = BTreeMap<i32, (i64, Option<i64>)>;

/// How far each partition read by a Parquet run has got: from the units
/// this run recorded, else from the newest range record (the state's copy
/// when it is of the same range).
pub fn reached_by_ranges(
    storage: &Storage,
    topic: &str,
    state: &State,
    ranges: &[PartitionRange],
    recorded: &[Unit],
) -> Result<Reached, ExportError> {
    let mut reached = Reached::new();
    for range in ranges {
        let partition = range.partition;
        let newest = recorded
            .iter()
            .filter(|u| u.partition == partition)
            .max_by_key(|u| u.last);
        if let Some(unit) = newest {
            reached.insert(partition, (unit.last + 1, unit.record.last_time));
            continue;
        }
        let held = StoredRanges::load(storage, topic, partition)?;
        let Some(unit) = held.newest() else {
            continue;
        };
        let next = unit.last + 1;
        let cached = state
            .partitions
            .get(&partition)
            .filter(|p| p.next == next)
            .map(|p| p.last_time);
        let last_time = match cached {
            Some(time) => time,
            None => held.read(storage, unit)?.last_time,
        };
        reached.insert(partition, (next, last_time));
    }
    Ok(reached)
}

/// How far each partition read by a Delta run has got: the table's
/// `txn` (or its files), and the last time its newest file's tags give.
pub fn reached_by_table(
    table: &crate::export::delta::DeltaTable,
    ranges: &[PartitionRange],
) -> Reached {
    use crate::export::stored::Held;
    let mut reached = Reached::new();
    for range in ranges {
        let Some(next) = table.partition(range.partition).next_offset() else {
            continue;
        };
        let last_time = table
            .snapshot()
            .live()
            .values()
            .filter_map(|f| f.range)
            .filter(|r| r.partition == range.partition)
            .max_by_key(|r| r.last)
            .and_then(|r| r.last_time);
        reached.insert(range.partition, (next, last_time));
    }
    reached
}

/// The end of a run: completeness from `reached`, the state promised, the
/// complete buckets compacted (`compact` merges one partition's, given
/// the new completeness; it returns what it did and how far the partition
/// is settled), the markers stored, the state kept.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    storage: &Storage,
    (topic, format, by): (&str, ExportFormat, PartitionBy),
    options: &ExportOptions,
    staging: &Path,
    mut state: State,
    ranges: &[PartitionRange],
    reached: &Reached,
    written: &[WrittenFile],
    compact: &mut dyn FnMut(i32, i64, i64) -> Result<(CompactReport, Option<i64>), ExportError>,
) -> Result<TimeReport, ExportError> {
    let positions: Vec<Position> = ranges
        .iter()
        .map(|range| {
            let (next, last_time) = reached
                .get(&range.partition)
                .copied()
                .unwrap_or((range.start, None));
            Position {
                last_time,
                caught_up: next >= range.high,
            }
        })
        .collect();
    let through = match (state.complete_through, watermark(&positions)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    for (partition, (next, last_time)) in reached {
        let entry = state.partitions.entry(*partition).or_default();
        let settled = entry.settled;
        *entry = PartitionState {
            next: *next,
            last_time: *last_time,
            settled,
        };
    }
    for file in written {
        if let Some(at) = file.location.filter(|l| !l.late) {
            state.first_bucket = Some(
                state
                    .first_bucket
                    .map_or(at.bucket.start, |b| b.min(at.bucket.start)),
            );
            state.newest_bucket = Some(
                state
                    .newest_bucket
                    .map_or(at.bucket.start, |b| b.max(at.bucket.start)),
            );
        }
    }
    state.partition_by = Some(by.name().to_owned());
    state.complete_through = through;
    // Promised first: a run that stops below still leaves the markers to
    // write to the next one.
    state.store(storage, topic, format, staging)?;
    let mut report = TimeReport::default();
    report.completeness.complete_through = through;
    let Some(through) = through else {
        return Ok(report);
    };
    if options.compact {
        for partition in reached.keys() {
            let from = state.partitions.get(partition).map_or(0, |p| p.settled);
            let (done, settled) = compact(*partition, from, through)?;
            report.compaction.add(&done);
            if let (Some(settled), Some(entry)) = (settled, state.partitions.get_mut(partition)) {
                entry.settled = entry.settled.max(settled);
            }
        }
    }
    if let Some(from) = state.marked_through.or(state.first_bucket) {
        let offsets: BTreeMap<i32, i64> =
            state.partitions.iter().map(|(p, s)| (*p, s.next)).collect();
        report.completeness.marked = store_markers(
            storage,
            (topic, format, by),
            (from, through),
            &options.run_id,
            &offsets,
        )?;
        state.marked_through = Some(state.marked_through.map_or(through, |m| m.max(through)));
    }
    state.store(storage, topic, format, staging)?;
    if !report.completeness.marked.is_empty() {
        tracing::info!(
            topic,
            buckets = ?report.completeness.marked,
            "buckets complete: markers stored"
        );
    }
    Ok(report)
}

/// [`finish`]'s compaction for a Parquet run: the partition's range
/// records from `from`, buckets complete through `through`.
#[allow(clippy::too_many_arguments)]
pub fn compact_ranges(
    storage: &Storage,
    topic: &str,
    options: &ExportOptions,
    by: PartitionBy,
    staging: &Path,
    journal: &mut Journal,
    (partition, from, through): (i32, i64, i64),
) -> Result<(CompactReport, Option<i64>), ExportError> {
    let held = StoredRanges::load(storage, topic, partition)?;
    let closed = |path: &str| by.parse(path).is_some_and(|b| by.end(b) <= through);
    compact_partition(
        storage, topic, options, by, staging, &held, from, &closed, journal,
    )
}
