//! Which offsets a consumer may commit. Records finish out of order (a join
//! member waits while later records flow past it), so a partition's commit
//! position is its lowest unfinished offset, or one past the last record
//! seen when all are finished: a crash never skips an unfinished record.

use std::collections::{BTreeMap, BTreeSet};

use crate::record::RecordRef;

#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// By topic, then partition: a record is looked up by its topic's
    /// `&str`, with no key allocated per record (this runs for each one
    /// twice).
    topics: BTreeMap<String, BTreeMap<i32, Progress>>,
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
    pub fn seen(&mut self, topic: &str, partition: i32, offset: i64) {
        let partitions = match self.topics.get_mut(topic) {
            Some(partitions) => partitions,
            None => self.topics.entry(topic.to_owned()).or_default(),
        };
        let progress = partitions.entry(partition).or_default();
        progress.unfinished.insert(offset);
        progress.next = progress.next.max(offset + 1);
    }

    /// A record was produced and acknowledged, dead-lettered or dropped.
    pub fn finished(&mut self, record: &RecordRef) {
        if let Some(progress) = self
            .topics
            .get_mut(record.topic.as_str())
            .and_then(|partitions| partitions.get_mut(&record.partition))
        {
            progress.unfinished.remove(&record.offset);
        }
    }

    /// Positions that moved since the last call: `(topic, partition, offset
    /// of the next record to read)`.
    pub fn take_commits(&mut self) -> Vec<(String, i32, i64)> {
        let mut moved = Vec::new();
        for (topic, partitions) in &mut self.topics {
            for (partition, progress) in partitions {
                let position = progress.position();
                if progress.next > 0 && progress.committed != Some(position) {
                    progress.committed = Some(position);
                    moved.push((topic.clone(), *partition, position));
                }
            }
        }
        moved
    }

    /// Records received and not finished, across partitions.
    pub fn unfinished(&self) -> usize {
        self.topics
            .values()
            .flat_map(BTreeMap::values)
            .map(|p| p.unfinished.len())
            .sum()
    }

    pub fn clear(&mut self) {
        self.topics.clear();
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
            tracker.seen("t", 0, offset);
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
        tracker.seen("t", 0, 0);
        tracker.seen("t", 1, 5);
        tracker.finished(&at(1, 5));
        assert_eq!(
            tracker.take_commits(),
            [("t".into(), 0, 0), ("t".into(), 1, 6)]
        );
        assert_eq!(tracker.unfinished(), 1);
    }

    #[test]
    fn topics_are_tracked_apart() {
        let mut tracker = OffsetTracker::default();
        tracker.seen("a", 0, 3);
        tracker.seen("b", 0, 7);
        tracker.finished(&RecordRef {
            topic: "b".into(),
            partition: 0,
            offset: 7,
        });
        assert_eq!(
            tracker.take_commits(),
            [("a".into(), 0, 3), ("b".into(), 0, 8)]
        );
    }
}
