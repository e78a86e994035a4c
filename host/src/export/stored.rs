//! What the storage already holds of a partition. The storage, not the
//! consumer group, is the record of what was exported (as in Kafka
//! Connect's storage sinks): a run that crashed after its upload and before
//! its offset commit has its files found here, and the next run goes on
//! after them instead of writing their records again.

use std::collections::BTreeSet;

use super::layout;
use crate::storage::{Storage, StorageError};

/// A data file in storage and the offsets it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub key: String,
    pub first: i64,
    pub last: i64,
}

impl StoredFile {
    fn within(&self, first: i64, last: i64) -> bool {
        first <= self.first && self.last <= last
    }
}

/// What the storage holds of one partition, as far as planning a run needs
/// it: a Parquet export's files, or a Delta table's.
pub trait Held {
    /// Where a run from the group's offsets goes on, when anything is held.
    fn next_offset(&self) -> Option<i64>;
    /// The held file whose range holds `offset`.
    fn covering(&self, offset: i64) -> Option<&StoredFile>;
    /// Whether [`Self::next_offset`] wins over a group offset past it too
    /// (a Delta table's `txn`), rather than only pushing a run forward.
    fn decides(&self) -> bool {
        false
    }
}

impl Held for StoredPartition {
    fn next_offset(&self) -> Option<i64> {
        StoredPartition::next_offset(self)
    }

    fn covering(&self, offset: i64) -> Option<&StoredFile> {
        StoredPartition::covering(self, offset)
    }
}

#[derive(Debug, Default)]
pub struct StoredPartition {
    topic: String,
    partition: i32,
    /// By first offset; no file lies within another (see [`Self::load`]).
    data: Vec<StoredFile>,
    /// Ranges that have a dead-letter file.
    dead_letters: BTreeSet<(i64, i64)>,
}

impl StoredPartition {
    /// Lists the partition's files and finishes what a crash interrupted:
    /// a data file lying within another one was superseded by it (a
    /// re-export of its range stored the larger file and stopped before
    /// removing this one), and a dead-letter file without the data file of
    /// its range belongs to a file that was never stored (dead letters go
    /// first). Both are removed, so every record is in storage once.
    pub fn load(storage: &Storage, topic: &str, partition: i32) -> Result<Self, StorageError> {
        let ranges = |dir: String, extension| -> Result<Vec<StoredFile>, StorageError> {
            Ok(storage
                .list(&dir)?
                .into_iter()
                .filter_map(|key| {
                    let (first, last) = layout::range_of(&key, topic, partition, extension)?;
                    Some(StoredFile { key, first, last })
                })
                .collect())
        };
        let mut data = ranges(layout::data_dir(topic, partition), layout::DATA)?;
        // Widest first among equal starts, so a file is checked against
        // every file that could hold it before it.
        data.sort_by_key(|f| (f.first, std::cmp::Reverse(f.last)));
        let mut kept: Vec<StoredFile> = Vec::with_capacity(data.len());
        for file in data {
            match kept.iter().find(|k| file.within(k.first, k.last)) {
                Some(holder) => {
                    tracing::info!(
                        topic,
                        partition,
                        file = file.key,
                        superseded_by = holder.key,
                        "removing a file a re-export superseded"
                    );
                    storage.delete(&layout::dead_letter_key(
                        topic, partition, file.first, file.last,
                    ))?;
                    storage.delete(&file.key)?;
                }
                None => kept.push(file),
            }
        }
        let mut dead_letters = BTreeSet::new();
        for file in ranges(
            layout::dead_letter_dir(topic, partition),
            layout::DEAD_LETTERS,
        )? {
            if kept
                .iter()
                .any(|d| (d.first, d.last) == (file.first, file.last))
            {
                dead_letters.insert((file.first, file.last));
            } else {
                tracing::info!(
                    topic,
                    partition,
                    file = file.key,
                    "removing dead letters whose data file was never stored; their records are read again"
                );
                storage.delete(&file.key)?;
            }
        }
        Ok(StoredPartition {
            topic: topic.to_owned(),
            partition,
            data: kept,
            dead_letters,
        })
    }

    /// The offset after the last one stored.
    pub fn next_offset(&self) -> Option<i64> {
        self.data.iter().map(|f| f.last + 1).max()
    }

    /// The stored file whose range holds `offset`.
    pub fn covering(&self, offset: i64) -> Option<&StoredFile> {
        self.data
            .iter()
            .find(|f| f.first <= offset && offset <= f.last)
    }

    pub fn has_dead_letters(&self, first: i64, last: i64) -> bool {
        self.dead_letters.contains(&(first, last))
    }

    /// Removes the files lying within `first..=last`, which this run has
    /// just rewritten into the files `written` (kept, whatever their range).
    pub fn remove_superseded(
        &self,
        storage: &Storage,
        first: i64,
        last: i64,
        written: &[String],
    ) -> Result<usize, StorageError> {
        let mut removed = 0;
        for file in self.data.iter().filter(|f| f.within(first, last)) {
            if written.contains(&file.key) {
                continue;
            }
            if self.has_dead_letters(file.first, file.last) {
                storage.delete(&layout::dead_letter_key(
                    &self.topic,
                    self.partition,
                    file.first,
                    file.last,
                ))?;
            }
            storage.delete(&file.key)?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(storage: &Storage, key: &str) {
        let staging = storage.staging_dir("t");
        std::fs::create_dir_all(&staging).unwrap();
        let local = staging.join("f");
        std::fs::write(&local, key).unwrap();
        storage.upload(&local, key).unwrap();
    }

    #[test]
    fn loading_removes_superseded_files_and_orphaned_dead_letters() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path().to_str().unwrap(), &Default::default()).unwrap();
        for (first, last) in [(0, 999), (0, 1499), (1500, 1599), (1550, 1560)] {
            put(&storage, &layout::data_key("t", 0, first, last));
        }
        for (first, last) in [(0, 999), (0, 1499), (1600, 1700)] {
            put(&storage, &layout::dead_letter_key("t", 0, first, last));
        }
        put(&storage, "topic=t/partition=0/not-ours.parquet");
        let stored = StoredPartition::load(&storage, "t", 0).unwrap();
        let kept: Vec<(i64, i64)> = stored.data.iter().map(|f| (f.first, f.last)).collect();
        assert_eq!(kept, [(0, 1499), (1500, 1599)]);
        assert_eq!(stored.next_offset(), Some(1600));
        assert!(stored.has_dead_letters(0, 1499));
        assert_eq!(
            storage.list("_dead_letters/topic=t/partition=0").unwrap(),
            [layout::dead_letter_key("t", 0, 0, 1499)]
        );
        assert_eq!(
            storage.list("topic=t/partition=0").unwrap().len(),
            3,
            "a file that is not an export's is left alone"
        );
        assert_eq!(stored.covering(1500).map(|f| f.first), Some(1500));
        assert_eq!(stored.covering(1600), None);
    }
}
