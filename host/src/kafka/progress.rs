//! Which offsets a consumer may commit. Records finish out of order (a join
//! member waits while later records flow past it), so a partition's commit
//! position is its lowest unfinished offset, or one past the last record
//! seen when all are finished: a crash never skips an unfinished record.

use std::collections::{BTreeMap, BTreeSet};

use crate::record::RecordRef;

#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<(String, i32), Progress>,
}

#[derive(Debug, Default)]
struct Progress {
    unfinished: BTreeSet<i64>,
    /// One past the highest offset seen.
    next: i64,
    /// The position last handed out for commit.
    committed: Option<i64>,
}

impl Progress {
    fn position(&self) -> i64 {
        self.unfinished.first().copied().unwrap_or(self.next)
    }
}

impl OffsetTracker {
    /// A record was received and is not finished yet.
    pub fn seen(&mut self, record: &RecordRef) {
        let progress = self
            .partitions
            .entry((record.topic.clone(), record.partition))
            .or_default();
        progress.unfinished.insert(record.offset);
        progress.next = progress.next.max(record.offset + 1);
    }

    /// A record was produced and acknowledged, dead-lettered or dropped.
    pub fn finished(&mut self, record: &RecordRef) {
        if let Some(progress) = self
            .partitions
            .get_mut(&(record.topic.clone(), record.partition))
        {
            progress.unfinished.remove(&record.offset);
        }
    }

    /// Positions that moved since the last call: `(topic, partition, offset
    /// of the next record to read)`.
    pub fn take_commits(&mut self) -> Vec<(String, i32, i64)> {
        let mut moved = Vec::new();
        for ((topic, partition), progress) in &mut self.partitions {
            let position = progress.position();
            if progress.next > 0 && progress.committed != Some(position) {
                progress.committed = Some(position);
                moved.push((topic.clone(), *partition, position));
            }
        }
        moved
    }

    /// Records received and not finished, across partitions.
    pub fn unfinished(&self) -> usize {
        self.partitions.values().map(|p| p.unfinished.len()).sum()
    }

    pub fn clear(&mut self) {
        self.partitions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offset: i64) -> RecordRef {
        RecordRef {
            topic: "t".into(),
            partition,
            offset,
        }
    }

    #[test]
    fn commits_stop_at_the_lowest_unfinished_offset() {
        let mut tracker = OffsetTracker::default();
        for offset in 10..15 {
            tracker.seen(&at(0, offset));
        }
        assert_eq!(tracker.take_commits(), [("t".into(), 0, 10)]);
        tracker.finished(&at(0, 10));
        tracker.finished(&at(0, 12));
        assert_eq!(tracker.take_commits(), [("t".into(), 0, 11)]);
        assert!(
            tracker.take_commits().is_empty(),
            "unchanged positions are not repeated"
        );
        for offset in [11, 13, 14] {
            tracker.finished(&at(0, offset));
        }
        assert_eq!(tracker.take_commits(), [("t".into(), 0, 15)]);
        assert_eq!(tracker.unfinished(), 0);
    }

    #[test]
    fn partitions_advance_independently() {
        let mut tracker = OffsetTracker::default();
        tracker.seen(&at(0, 0));
        tracker.seen(&at(1, 5));
        tracker.finished(&at(1, 5));
        assert_eq!(
            tracker.take_commits(),
            [("t".into(), 0, 0), ("t".into(), 1, 6)]
        );
        assert_eq!(tracker.unfinished(), 1);
    }
}
