//! Which offsets a consumer may commit. Records finish out of order (a join
//! member waits while later records flow past it), so a partition's commit
//! position is its lowest unfinished offset, or one past the last record
//! seen when all are finished: a crash never skips an unfinished record.
//!
//! A rebalance takes partitions away: the whole assignment under the eager
//! protocol, some of it under the cooperative one. Only the partitions
//! taken ([`Forgotten`]) stop being tracked; the ones kept go on, since their
//! records are not read again.

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

    /// Stops tracking `forgotten` partitions: their unfinished records are
    /// read again (by their next owner, or here after a rewind), and one of
    /// their records reported finished later changes nothing.
    pub fn forget(&mut self, forgotten: &Forgotten) {
        match forgotten {
            Forgotten::All => self.topics.clear(),
            Forgotten::Partitions(taken) => {
                for (topic, partitions) in taken {
                    if let Some(tracked) = self.topics.get_mut(topic.as_str()) {
                        tracked.retain(|partition, _| !partitions.contains(partition));
                    }
                }
                self.topics.retain(|_, partitions| !partitions.is_empty());
            }
        }
    }

    /// Where each partition with unfinished records must be read again
    /// from to see them all once more: `(topic, partition, lowest
    /// unfinished offset)`.
    pub fn rewind_positions(&self) -> Vec<(String, i32, i64)> {
        let mut positions = Vec::new();
        for (topic, partitions) in &self.topics {
            for (partition, progress) in partitions {
                if let Some(&lowest) = progress.unfinished.first() {
                    positions.push((topic.clone(), *partition, lowest));
                }
            }
        }
        positions
    }
}

/// Partitions whose records a consumer's caller must forget after a
/// rebalance (join members waiting, records not yet tried, records polled):
/// the group no longer gives them to this member, or their unfinished
/// records will be read again from where they start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forgotten {
    /// Every partition: the eager protocol revokes the whole assignment.
    All,
    /// These partitions, by topic; the others keep their records.
    Partitions(BTreeMap<String, BTreeSet<i32>>),
}

impl Default for Forgotten {
    fn default() -> Self {
        Forgotten::Partitions(BTreeMap::new())
    }
}

impl Forgotten {
    /// `(topic, partition)` pairs.
    pub fn partitions<'a>(pairs: impl IntoIterator<Item = (&'a str, i32)>) -> Self {
        let mut forgotten = Forgotten::default();
        for (topic, partition) in pairs {
            forgotten.add(topic, partition);
        }
        forgotten
    }

    pub fn contains(&self, topic: &str, partition: i32) -> bool {
        match self {
            Forgotten::All => true,
            Forgotten::Partitions(taken) => taken
                .get(topic)
                .is_some_and(|partitions| partitions.contains(&partition)),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Forgotten::Partitions(taken) if taken.is_empty())
    }

    pub fn add(&mut self, topic: &str, partition: i32) {
        if let Forgotten::Partitions(taken) = self {
            match taken.get_mut(topic) {
                Some(partitions) => {
                    partitions.insert(partition);
                }
                None => {
                    taken.insert(topic.to_owned(), BTreeSet::from([partition]));
                }
            }
        }
    }

    /// Both `self`'s partitions and `other`'s.
    pub fn merge(&mut self, other: Forgotten) {
        match other {
            Forgotten::All => *self = Forgotten::All,
            Forgotten::Partitions(taken) => {
                for (topic, partitions) in taken {
                    for partition in partitions {
                        self.add(&topic, partition);
                    }
                }
            }
        }
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

    /// A cooperative revoke takes one partition and leaves the other: the
    /// kept one's unfinished records still hold its commit back (clearing
    /// everything, as an eager revoke may, would let it pass them while
    /// they are never read again).
    #[test]
    fn a_revoke_forgets_only_the_partitions_it_takes() {
        let mut tracker = OffsetTracker::default();
        for offset in 0..4 {
            tracker.seen("t", 0, offset);
            tracker.seen("t", 1, offset);
        }
        tracker.finished(&at(1, 0));
        tracker.forget(&Forgotten::partitions([("t", 0)]));
        assert_eq!(tracker.unfinished(), 3, "partition 1's three are kept");
        assert_eq!(tracker.take_commits(), [("t".into(), 1, 1)]);
        tracker.finished(&at(0, 2));
        tracker.seen("t", 1, 4);
        assert!(
            tracker.take_commits().is_empty(),
            "a revoked partition's record finished late commits nothing; partition 1 still waits at 1"
        );
        tracker.forget(&Forgotten::All);
        assert_eq!(tracker.unfinished(), 0);
    }

    #[test]
    fn a_rewind_starts_each_partition_at_its_lowest_unfinished_offset() {
        let mut tracker = OffsetTracker::default();
        for offset in 10..15 {
            tracker.seen("t", 0, offset);
        }
        tracker.seen("t", 1, 3);
        tracker.seen("u", 0, 7);
        for offset in [10, 11, 13] {
            tracker.finished(&at(0, offset));
        }
        tracker.finished(&at(1, 3));
        assert_eq!(
            tracker.rewind_positions(),
            [("t".into(), 0, 12), ("u".into(), 0, 7)],
            "partition 1 has nothing unfinished: not rewound"
        );
    }

    #[test]
    fn forgotten_partitions_merge_and_all_takes_everything() {
        let mut forgotten = Forgotten::partitions([("t", 0)]);
        assert!(!forgotten.is_empty() && Forgotten::default().is_empty());
        forgotten.merge(Forgotten::partitions([("t", 2), ("u", 0)]));
        assert!(forgotten.contains("t", 0) && forgotten.contains("t", 2));
        assert!(forgotten.contains("u", 0) && !forgotten.contains("t", 1));
        forgotten.merge(Forgotten::All);
        assert!(forgotten.contains("v", 9));
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
