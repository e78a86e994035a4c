//! A time-partitioned Delta table's compaction: the same plan as the
//! Parquet files' (`export/compact.rs`), over the table's units (the files
//! of one partition whose tags name the same range), each group's files
//! of a time partition merged into one, then bin-packed into the table in
//! one commit (`remove`s and `add`s with `dataChange` false). The merged
//! files are stored before the commit; a run that stops in between leaves
//! them outside the table, for VACUUM, and the next run merges again.

use std::collections::BTreeMap;
use std::path::Path;

use super::buckets::Location;
use super::compact::{CompactReport, Source, UnitView, merge_location, plan, store_merged};
use super::delta::DeltaTable;
use super::error::ExportError;
use super::layout::{self, FileNames};
use super::options::ExportOptions;
use crate::config::PartitionBy;
use crate::storage::Storage;

/// One of a unit's files: its path in the table, its time partition's
/// folder, size, dead letters (relative to the table).
struct UnitFile {
    path: String,
    folder: String,
    size: u64,
    dead_letters: Option<String>,
}

/// One unit of the table: files of one partition tagged with one range.
#[derive(Default)]
struct TableUnit {
    compacted: bool,
    last_time: Option<i64>,
    files: Vec<UnitFile>,
}

/// A folder's files to merge: key, dead letters' key, the unit's last offset.
type Sources = Vec<(String, Option<String>, i64)>;

/// Merges the small files of one partition's units whose time partitions
/// all ended by `through`, from offset `from` on. Returns what it did and
/// how far the partition is settled.
#[allow(clippy::too_many_arguments)]
pub fn compact_partition(
    storage: &Storage,
    table: &mut DeltaTable,
    options: &ExportOptions,
    by: PartitionBy,
    staging: &Path,
    partition: i32,
    (from, through): (i64, i64),
) -> Result<(CompactReport, Option<i64>), ExportError> {
    // The table's units of this partition: files by their tagged range.
    let mut units: BTreeMap<(i64, i64), TableUnit> = BTreeMap::new();
    for (path, live) in table.snapshot().live() {
        let Some(range) = live
            .range
            .filter(|r| r.partition == partition && r.last >= from)
        else {
            continue;
        };
        let folder = path.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned();
        let unit = units.entry((range.first, range.last)).or_default();
        unit.compacted |= range.compacted;
        unit.last_time = unit.last_time.or(range.last_time);
        unit.files.push(UnitFile {
            path: path.clone(),
            folder,
            size: u64::try_from(live.size).unwrap_or(0),
            dead_letters: live.dead_letters.clone(),
        });
    }
    let units: Vec<((i64, i64), TableUnit)> = units.into_iter().collect();
    let closed = |folder: &str| by.parse(folder).is_some_and(|b| by.end(b) <= through);
    let views: Vec<UnitView> = units
        .iter()
        .map(|((first, last), unit)| UnitView {
            first: *first,
            last: *last,
            compacted: unit.compacted,
            closed: unit.files.iter().all(|f| closed(&f.folder)),
            files: unit
                .files
                .iter()
                .map(|f| (f.folder.clone(), f.size))
                .collect(),
        })
        .collect();
    let plan = plan(&views, options.target_file_bytes);
    let mut report = CompactReport::default();
    let topic = table.topic().to_owned();
    let in_table = |relative: &str| format!("{}/{relative}", layout::delta_table(&topic));
    let names = FileNames::DeltaBuckets {
        run_id: options.run_id.clone(),
        by,
    };
    for group in plan.groups {
        let Some(members) = units.get(group) else {
            continue;
        };
        let (Some(((first, _), _)), Some(((_, last), newest))) = (members.first(), members.last())
        else {
            continue;
        };
        let (first, last, last_time) = (*first, *last, newest.last_time);
        let dir = staging.join(format!("compact-{partition}-{first}"));
        let mut by_folder: BTreeMap<&str, Sources> = BTreeMap::new();
        for ((_, unit_last), unit) in members {
            for file in &unit.files {
                by_folder.entry(&file.folder).or_default().push((
                    in_table(&file.path),
                    file.dead_letters.as_deref().map(in_table),
                    *unit_last,
                ));
            }
        }
        let mut merged = Vec::new();
        let mut skipped = false;
        for (folder, files) in &by_folder {
            let Some(bucket) = by.parse(folder) else {
                skipped = true;
                break;
            };
            let sources: Vec<Source<'_>> = files
                .iter()
                .map(|(key, dead, last)| Source {
                    key,
                    dead_letters: dead.as_deref(),
                    last: *last,
                })
                .collect();
            let location = Location {
                bucket,
                late: false,
            };
            match merge_location(
                storage,
                &topic,
                options,
                by,
                &dir,
                (partition, first),
                location,
                &sources,
            )? {
                Some(file) => {
                    let mut written = file.finish(&names, last)?;
                    written.last_time = last_time;
                    merged.push(written);
                }
                None => {
                    skipped = true;
                    break;
                }
            }
        }
        if skipped {
            let _ = std::fs::remove_dir_all(&dir);
            report.skipped += 1;
            continue;
        }
        store_merged(storage, &topic, &merged, options.upload_concurrency)?;
        let removes: Vec<String> = members
            .iter()
            .flat_map(|(_, unit)| unit.files.iter().map(|f| f.path.clone()))
            .collect();
        let adds = merged.iter().map(|f| table.compacted_add(f)).collect();
        table.commit_rewrite(storage, &removes, adds)?;
        let _ = std::fs::remove_dir_all(&dir);
        tracing::info!(
            topic,
            partition,
            first,
            last,
            files_in = removes.len(),
            files_out = merged.len(),
            "compacted the table's files of complete partitions"
        );
        report.add(&CompactReport {
            files_in: removes.len(),
            files_out: merged.len(),
            bytes_out: merged.iter().map(|f| f.bytes).sum(),
            skipped: 0,
        });
    }
    Ok((report, plan.settled))
}
