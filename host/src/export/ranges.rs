//! The record of a time-partitioned Parquet export. Its files are spread
//! over time folders, so the files themselves can no longer say how far a
//! partition has been exported: a range of offsets (a unit: one file per
//! folder its records went to, every file named by the unit's offsets) is
//! exported once its range record, `_ranges/topic=T/partition=P/T+P+<first>-<last>.json`,
//! is stored. The records' names are what the resume decision reads, as the
//! flat layout reads its files' names; their contents list the unit's files.
//!
//! Files are stored before the record that makes them count, so a crash in
//! between must not leave them behind, unlisted, where readers see them. A
//! journal entry (`_ranges/topic=T/_pending/<run>-<n>.json`) names every
//! file before it is stored; the next run removes the files of a pending
//! entry whose ranges were never recorded. An operation that replaces files
//! (a re-export, a compaction) stores its new files, then writes its
//! decision (`<run>-<n>.decided.json`: the records to store and the records
//! and files they replace), and only then changes records and removes
//! files; a decided entry is carried out to its end by whichever run finds
//! it. Every name is unique to its run, so nothing stored is overwritten
//! until it is decided.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::layout;
use super::stored::{Held, StoredFile};
use super::written::WrittenFile;
use crate::config::PartitionBy;
use crate::storage::{Storage, StorageError};

/// One of a unit's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeFile {
    pub key: String,
    /// Its folder: `dt=2026-12-05/hour=14`, under `_late/` when late.
    pub bucket: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    pub rows: u64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dead_lettered: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RangeFile {
    /// The entry of a written file, its folder named as `by` names it.
    pub fn of(file: &WrittenFile, by: PartitionBy) -> Self {
        RangeFile {
            key: file.key.clone(),
            bucket: file
                .location
                .map(|at| by.path(at.bucket))
                .unwrap_or_default(),
            late: file.location.is_some_and(|at| at.late),
            rows: file.rows,
            bytes: file.bytes,
            dead_letters: file.dead_letters.as_ref().map(|(_, key)| key.clone()),
            dead_lettered: file.dead_lettered,
        }
    }

    /// The keys this file is stored under: data, then dead letters.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.key.as_str()).chain(self.dead_letters.as_deref())
    }
}

/// What a range record holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRecord {
    /// The run that wrote it: tells a record this run stored from an
    /// earlier one of the same name.
    pub run: String,
    pub files: Vec<RangeFile>,
    /// The time (what the folders go by) of the unit's last record kept,
    /// by offset: how far the partition has passed, for completeness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_time: Option<i64>,
    /// Made by a compaction: never compacted again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compacted: bool,
}

/// A unit: which partition and offsets, and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    pub record: RangeRecord,
}

/// A record and files an operation replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    pub files: Vec<String>,
}

impl Replaced {
    /// The unit of `partition` from `first` to `last` recorded by `record`,
    /// with every key its files are stored under.
    pub fn of(partition: i32, (first, last): (i64, i64), record: &RangeRecord) -> Self {
        Replaced {
            partition,
            first,
            last,
            files: record
                .files
                .iter()
                .flat_map(RangeFile::keys)
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// A journal entry: units whose files are being stored, and (decided) the
/// records and files they replace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub run: String,
    pub units: Vec<Unit>,
    #[serde(default)]
    pub replaces: Vec<Replaced>,
}

/// The record of a partition's unit.
pub fn record_key(topic: &str, partition: i32, first: i64, last: i64) -> String {
    format!(
        "{}/{topic}+{partition}+{first}-{last}.json",
        layout::ranges_dir(topic, partition)
    )
}

fn entry_key(topic: &str, run: &str, seq: u64, decided: bool) -> String {
    let kind = if decided { ".decided" } else { "" };
    format!("{}/{run}-{seq}{kind}.json", layout::pending_dir(topic))
}

fn to_json(value: &impl Serialize) -> Bytes {
    // Types of plain strings and numbers: serializing cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

fn read<T: for<'de> Deserialize<'de>>(
    storage: &Storage,
    key: &str,
) -> Result<Option<T>, RangeError> {
    match storage.get_if_exists(key)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RangeError::Corrupt {
                key: key.to_owned(),
                reason: e.to_string(),
            }),
        None => Ok(None),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{key}: not a range record or journal entry Sluice can read: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(
        "{topic} partition {partition}: the range records {a} and {b} overlap; \
         the output was changed by hand or by another writer"
    )]
    Overlap {
        topic: String,
        partition: i32,
        a: String,
        b: String,
    },
}

/// Stores `unit`'s record, replacing an earlier record of the same name
/// (a re-export of the same range); only a decided entry or a unit new
/// to the partition calls this, so a crash in between is carried out again.
pub fn put_record(storage: &Storage, topic: &str, unit: &Unit) -> Result<(), RangeError> {
    let key = record_key(topic, unit.partition, unit.first, unit.last);
    let bytes = to_json(&unit.record);
    if storage.put_if_absent(&key, bytes.clone())? {
        return Ok(());
    }
    if storage.get_if_exists(&key)?.as_ref() == Some(&bytes) {
        return Ok(()); // this run's own, stored before
    }
    storage.delete(&key)?;
    storage.put_if_absent(&key, bytes)?;
    Ok(())
}

/// A run's journal: its entries, numbered in order.
#[derive(Debug)]
pub struct Journal {
    topic: String,
    run: String,
    next: u64,
    /// Entries written and not yet removed.
    open: Vec<String>,
}

impl Journal {
    pub fn new(topic: &str, run: &str) -> Self {
        Journal {
            topic: topic.to_owned(),
            run: run.to_owned(),
            next: 0,
            open: Vec::new(),
        }
    }

    pub fn run(&self) -> &str {
        &self.run
    }

    /// Names `units`' files before they are stored; returns the entry's key.
    pub fn storing(&mut self, storage: &Storage, units: &[Unit]) -> Result<String, RangeError> {
        let key = entry_key(&self.topic, &self.run, self.next, false);
        self.next += 1;
        let entry = Entry {
            run: self.run.clone(),
            units: units.to_vec(),
            replaces: Vec::new(),
        };
        storage.put_if_absent(&key, to_json(&entry))?;
        self.open.push(key.clone());
        Ok(key)
    }

    /// Stores the records of units whose files are stored, which replace
    /// nothing, and removes their entry.
    pub fn recorded(
        &mut self,
        storage: &Storage,
        entry: &str,
        units: &[Unit],
    ) -> Result<(), RangeError> {
        for unit in units {
            put_record(storage, &self.topic, unit)?;
        }
        storage.delete(entry)?;
        self.open.retain(|k| k != entry);
        Ok(())
    }

    /// Decides an operation whose new files are all stored: `units`'
    /// records replace `replaces`. Once the decision is stored it is
    /// carried out (here, or by the next run if this one stops), and
    /// every entry of this run is then removed.
    pub fn decide(
        &mut self,
        storage: &Storage,
        units: Vec<Unit>,
        replaces: Vec<Replaced>,
    ) -> Result<(), RangeError> {
        let key = entry_key(&self.topic, &self.run, self.next, true);
        self.next += 1;
        let entry = Entry {
            run: self.run.clone(),
            units,
            replaces,
        };
        storage.put_if_absent(&key, to_json(&entry))?;
        crate::crash_point!("ranges::decided");
        carry_out(storage, &self.topic, &entry)?;
        for open in std::mem::take(&mut self.open) {
            storage.delete(&open)?;
        }
        storage.delete(&key)?;
        Ok(())
    }
}

/// Stores a decided entry's records, then removes what it replaces:
/// records of other names, and files no new record lists.
fn carry_out(storage: &Storage, topic: &str, entry: &Entry) -> Result<(), RangeError> {
    for unit in &entry.units {
        put_record(storage, topic, unit)?;
    }
    crate::crash_point!("ranges::before-remove");
    let kept: std::collections::BTreeSet<&str> = entry
        .units
        .iter()
        .flat_map(|u| u.record.files.iter().flat_map(RangeFile::keys))
        .collect();
    let recorded: std::collections::BTreeSet<(i32, i64, i64)> = entry
        .units
        .iter()
        .map(|u| (u.partition, u.first, u.last))
        .collect();
    for old in &entry.replaces {
        for file in &old.files {
            if !kept.contains(file.as_str()) {
                storage.delete(file)?;
            }
        }
        if !recorded.contains(&(old.partition, old.first, old.last)) {
            storage.delete(&record_key(topic, old.partition, old.first, old.last))?;
        }
    }
    Ok(())
}

/// Finishes what runs of `topic` left in its journal: decided entries are
/// carried out; the files of pending units whose records were never stored
/// are removed. Returns how many entries it found.
pub fn recover(storage: &Storage, topic: &str) -> Result<usize, RangeError> {
    let keys = storage.list(&layout::pending_dir(topic))?;
    let (decided, pending): (Vec<&String>, Vec<&String>) = keys
        .iter()
        .filter(|k| k.ends_with(".json"))
        .partition(|k| k.ends_with(".decided.json"));
    for key in &decided {
        if let Some(entry) = read::<Entry>(storage, key)? {
            tracing::info!(topic, entry = %key, "carrying out a decision a run stopped in");
            carry_out(storage, topic, &entry)?;
        }
        storage.delete(key)?;
    }
    for key in &pending {
        if let Some(entry) = read::<Entry>(storage, key)? {
            for unit in &entry.units {
                let record_key = record_key(topic, unit.partition, unit.first, unit.last);
                let stored = read::<RangeRecord>(storage, &record_key)?;
                if stored.is_some_and(|r| r.run == entry.run) {
                    continue;
                }
                tracing::info!(
                    topic,
                    partition = unit.partition,
                    first = unit.first,
                    last = unit.last,
                    "removing files a stopped run stored without recording them; their records are read again"
                );
                for file in &unit.record.files {
                    for key in file.keys() {
                        storage.delete(key)?;
                    }
                }
            }
        }
        storage.delete(key)?;
    }
    Ok(decided.len() + pending.len())
}

/// The recorded units of one partition, as far as planning a run needs
/// them: their names.
#[derive(Debug, Clone, Default)]
pub struct StoredRanges {
    partition: i32,
    /// By first offset, none overlapping.
    units: Vec<StoredFile>,
}

impl StoredRanges {
    pub fn load(storage: &Storage, topic: &str, partition: i32) -> Result<Self, RangeError> {
        let mut units: Vec<StoredFile> = storage
            .list(&layout::ranges_dir(topic, partition))?
            .into_iter()
            .filter_map(|key| {
                let (first, last) = layout::range_of(&key, topic, partition, "json")?;
                Some(StoredFile { key, first, last })
            })
            .collect();
        units.sort_by_key(|u| (u.first, u.last));
        for pair in units.windows(2) {
            if let [a, b] = pair
                && b.first <= a.last
            {
                return Err(RangeError::Overlap {
                    topic: topic.to_owned(),
                    partition,
                    a: a.key.clone(),
                    b: b.key.clone(),
                });
            }
        }
        Ok(StoredRanges { partition, units })
    }

    #[cfg(test)]
    pub fn units(&self) -> &[StoredFile] {
        &self.units
    }

    /// The record of a unit.
    pub fn read(&self, storage: &Storage, unit: &StoredFile) -> Result<RangeRecord, RangeError> {
        read::<RangeRecord>(storage, &unit.key)?.ok_or_else(|| RangeError::Corrupt {
            key: unit.key.clone(),
            reason: "listed, then gone".into(),
        })
    }

    /// The units lying within `first..=last`, with their files: what a
    /// re-export of that span replaces.
    pub fn within(
        &self,
        storage: &Storage,
        first: i64,
        last: i64,
    ) -> Result<Vec<Replaced>, RangeError> {
        self.units
            .iter()
            .filter(|u| first <= u.first && u.last <= last)
            .map(|u| {
                let record = self.read(storage, u)?;
                Ok(Replaced::of(self.partition, (u.first, u.last), &record))
            })
            .collect()
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The units holding any of `from..to`, by first offset.
    pub fn overlapping(&self, from: i64, to: i64) -> impl Iterator<Item = &StoredFile> {
        self.units
            .iter()
            .filter(move |u| u.first < to && from <= u.last)
    }

    /// The newest unit: how far the partition is exported.
    pub fn newest(&self) -> Option<&StoredFile> {
        self.units.last()
    }
}

impl Held for StoredRanges {
    fn next_offset(&self) -> Option<i64> {
        self.units.iter().map(|u| u.last + 1).max()
    }

    fn covering(&self, offset: i64) -> Option<&StoredFile> {
        self.units
            .iter()
            .find(|u| u.first <= offset && offset <= u.last)
    }
}

/// Every unit record of a partition, read: for status and compaction.
pub fn read_all(
    storage: &Storage,
    ranges: &StoredRanges,
    from: i64,
) -> Result<BTreeMap<(i64, i64), RangeRecord>, RangeError> {
    ranges
        .units
        .iter()
        .filter(|u| u.last >= from)
        .map(|u| Ok(((u.first, u.last), ranges.read(storage, u)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> (tempfile::TempDir, Storage) {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path().to_str().unwrap(), &Default::default()).unwrap();
        (root, storage)
    }

    fn file(storage: &Storage, key: &str) -> RangeFile {
        storage
            .put_if_absent(key, Bytes::from_static(b"rows"))
            .unwrap();
        RangeFile {
            key: key.to_owned(),
            bucket: "dt=2026-12-05/hour=14".into(),
            late: false,
            rows: 1,
            bytes: 4,
            dead_letters: None,
            dead_lettered: 0,
        }
    }

    fn unit(run: &str, first: i64, last: i64, files: Vec<RangeFile>) -> Unit {
        Unit {
            partition: 0,
            first,
            last,
            record: RangeRecord {
                run: run.into(),
                files,
                last_time: Some(last),
                compacted: false,
            },
        }
    }

    fn exists(storage: &Storage, key: &str) -> bool {
        storage.get_if_exists(key).unwrap().is_some()
    }

    #[test]
    fn files_of_a_unit_never_recorded_are_removed_and_recorded_ones_kept() {
        let (_root, storage) = local();
        let mut journal = Journal::new("t", "run-1");
        let a = unit(
            "run-1",
            0,
            9,
            vec![file(&storage, "topic=t/dt=x/a.parquet")],
        );
        let b = unit(
            "run-1",
            10,
            19,
            vec![file(&storage, "topic=t/dt=x/b.parquet")],
        );
        let entry = journal.storing(&storage, std::slice::from_ref(&a)).unwrap();
        journal
            .recorded(&storage, &entry, std::slice::from_ref(&a))
            .unwrap();
        // The run stops after storing b's file, before its record.
        journal.storing(&storage, std::slice::from_ref(&b)).unwrap();
        assert_eq!(recover(&storage, "t").unwrap(), 1);
        assert!(exists(&storage, "topic=t/dt=x/a.parquet"));
        assert!(
            !exists(&storage, "topic=t/dt=x/b.parquet"),
            "never recorded"
        );
        let held = StoredRanges::load(&storage, "t", 0).unwrap();
        assert_eq!(held.next_offset(), Some(10));
        assert_eq!(recover(&storage, "t").unwrap(), 0, "the journal is empty");
    }

    #[test]
    fn a_decision_is_carried_out_by_the_next_run_and_an_undecided_one_undone() {
        let (_root, storage) = local();
        let mut first = Journal::new("t", "run-1");
        let old: Vec<Unit> = [(0, 9, "a"), (10, 19, "b")]
            .iter()
            .map(|(f, l, n)| unit("run-1", *f, *l, vec![file(&storage, &format!("k/{n}"))]))
            .collect();
        let entry = first.storing(&storage, &old).unwrap();
        first.recorded(&storage, &entry, &old).unwrap();
        let held = StoredRanges::load(&storage, "t", 0).unwrap();
        let replaced = held.within(&storage, 0, 19).unwrap();
        assert_eq!(replaced.len(), 2);

        // A compaction stores its merged file and stops before deciding:
        // the merged file goes, the old ones stay.
        let merged = unit("run-2", 0, 19, vec![file(&storage, "k/merged")]);
        let mut second = Journal::new("t", "run-2");
        second
            .storing(&storage, std::slice::from_ref(&merged))
            .unwrap();
        recover(&storage, "t").unwrap();
        assert!(!exists(&storage, "k/merged"));
        assert!(exists(&storage, "k/a") && exists(&storage, "k/b"));

        // Again, and it stops right after its decision: the next run
        // carries it out.
        let merged = unit("run-3", 0, 19, vec![file(&storage, "k/merged")]);
        let mut third = Journal::new("t", "run-3");
        third
            .storing(&storage, std::slice::from_ref(&merged))
            .unwrap();
        let key = entry_key("t", "run-3", 1, true);
        let entry = Entry {
            run: "run-3".into(),
            units: vec![merged],
            replaces: replaced,
        };
        storage.put_if_absent(&key, to_json(&entry)).unwrap();
        assert_eq!(recover(&storage, "t").unwrap(), 2);
        assert!(
            exists(&storage, "k/merged"),
            "the pending entry's unit was recorded"
        );
        assert!(!exists(&storage, "k/a") && !exists(&storage, "k/b"));
        let held = StoredRanges::load(&storage, "t", 0).unwrap();
        let names: Vec<(i64, i64)> = held.units().iter().map(|u| (u.first, u.last)).collect();
        assert_eq!(names, [(0, 19)]);
    }

    #[test]
    fn a_record_rewritten_under_its_own_name_replaces_the_old_one() {
        let (_root, storage) = local();
        let old = unit("run-1", 0, 9, vec![file(&storage, "k/old")]);
        put_record(&storage, "t", &old).unwrap();
        let mut journal = Journal::new("t", "run-2");
        let new = unit("run-2", 0, 9, vec![file(&storage, "k/new")]);
        journal
            .storing(&storage, std::slice::from_ref(&new))
            .unwrap();
        let held = StoredRanges::load(&storage, "t", 0).unwrap();
        let replaced = held.within(&storage, 0, 9).unwrap();
        journal.decide(&storage, vec![new], replaced).unwrap();
        let held = StoredRanges::load(&storage, "t", 0).unwrap();
        let record = held.read(&storage, &held.units()[0]).unwrap();
        assert_eq!(record.run, "run-2");
        assert!(!exists(&storage, "k/old") && exists(&storage, "k/new"));
        assert!(storage.list(&layout::pending_dir("t")).unwrap().is_empty());
    }

    #[test]
    fn overlapping_records_are_refused_by_name() {
        let (_root, storage) = local();
        put_record(&storage, "t", &unit("r", 0, 9, vec![])).unwrap();
        put_record(&storage, "t", &unit("r", 5, 14, vec![])).unwrap();
        let error = StoredRanges::load(&storage, "t", 0)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("t+0+0-9.json") && error.contains("overlap"),
            "{error}"
        );
    }
}
