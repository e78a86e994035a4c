//! Where a topic's run reads and writes, from what the storage holds: the
//! exactly-once decision, kept apart from reading and writing so that it
//! can be tested on its own. The storage (the files, or the Delta table's
//! log) is the record of what was exported; the consumer group's offsets
//! only say where aggregating got to and what lag tools see.

use crate::kafka::{PartitionRange, ReadPlan, Start};

use super::stored::Held;

/// One partition's part of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionPlan {
    /// What is read.
    pub read: PartitionRange,
    /// Records below this offset are already stored (a run that failed
    /// stored them): they are read for the aggregator only, not written.
    pub write_from: i64,
}

/// The part of `range` not yet in storage. From the group's offsets, a run
/// goes on after the last offset stored, which is past the committed one
/// when an earlier run stored its files and stopped before committing. A
/// run from explicit offsets or the earliest ones re-exports what it is
/// asked to; a stored file the range starts or ends inside is rewritten
/// whole (its records read again), so the new files replace old ones
/// entirely and no record is stored twice. A Delta table's `txn` decides
/// where the group resumes even when the group's offset is past it.
pub fn still_needed(range: PartitionRange, stored: &impl Held, plan: &ReadPlan) -> PartitionRange {
    let mut range = range;
    if let Start::Committed = plan.start {
        let Some(next) = stored
            .next_offset()
            .filter(|next| *next > range.start || stored.decides())
        else {
            return range;
        };
        if next > range.high {
            tracing::warn!(
                topic = plan.topic,
                partition = range.partition,
                stored_up_to = next - 1,
                high_watermark = range.high,
                "the storage holds offsets past the partition's end (was the topic re-created, or \
                 is this folder another cluster's?): nothing is read until the partition passes them"
            );
        }
        if next < range.low {
            tracing::warn!(
                topic = plan.topic,
                partition = range.partition,
                stored_up_to = next - 1,
                low_watermark = range.low,
                "the partition no longer has the records after what is stored (retention \
                 deleted them): the run starts at its earliest offset"
            );
        }
        range.start = next.max(range.low).min(range.high);
        range.end = plan.capped_end(range.start, range.high);
        return range;
    }
    if range.start >= range.end {
        return range;
    }
    if let Some(file) = stored.covering(range.start) {
        // Records below the low watermark are gone: such a file cannot be
        // rewritten, so the read goes on after it instead.
        range.start = if file.first >= range.low {
            file.first
        } else {
            file.last + 1
        };
    }
    if let Some(file) = stored.covering(range.end - 1) {
        range.end = if file.last < range.high {
            file.last + 1
        } else {
            file.first
        };
    }
    range.end = range.end.max(range.start);
    range
}

/// The read of a run with an aggregator, from the group's offsets:
/// `needed` (what [`still_needed`] leaves) reaches back to `aggregated`,
/// the offset after the last record any stored aggregate holds, so that
/// records a failed run stored (and aggregated into nothing) reach this
/// run's aggregate; they are not written again.
pub fn with_unaggregated(needed: PartitionRange, aggregated: i64) -> PartitionPlan {
    let from = aggregated.max(needed.low);
    let mut read = needed;
    if from < needed.start {
        read.start = from;
    }
    PartitionPlan {
        read,
        write_from: needed.start,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::export::stored::StoredFile;

    /// Files held, as `(first, last)`; `decides` as a Delta table's txn.
    struct Files {
        files: Vec<(i64, i64)>,
        decides: bool,
        stored: Vec<StoredFile>,
    }

    impl Files {
        fn new(files: &[(i64, i64)], decides: bool) -> Self {
            Files {
                files: files.to_vec(),
                decides,
                stored: files
                    .iter()
                    .map(|(first, last)| StoredFile {
                        key: format!("{first}-{last}"),
                        first: *first,
                        last: *last,
                    })
                    .collect(),
            }
        }
    }

    impl Held for Files {
        fn next_offset(&self) -> Option<i64> {
            self.files.iter().map(|(_, last)| last + 1).max()
        }
        fn covering(&self, offset: i64) -> Option<&StoredFile> {
            self.stored
                .iter()
                .find(|f| f.first <= offset && offset <= f.last)
        }
        fn decides(&self) -> bool {
            self.decides
        }
    }

    fn range(start: i64, end: i64, low: i64, high: i64) -> PartitionRange {
        PartitionRange {
            partition: 0,
            start,
            end,
            low,
            high,
        }
    }

    fn plan(start: Start, max: Option<u64>) -> ReadPlan {
        ReadPlan {
            topic: "t".into(),
            group_id: "g".into(),
            start,
            max_per_partition: max,
            offset_increment: BTreeMap::new(),
        }
    }

    /// A case, a range as resolved `(start, end, low, high)`, the files
    /// held, whether a txn decides, the plan, and the expected
    /// `(start, end)`.
    type Case = (
        &'static str,
        (i64, i64, i64, i64),
        Vec<(i64, i64)>,
        bool,
        ReadPlan,
        (i64, i64),
    );

    #[test]
    fn the_exactly_once_decision() {
        let committed = || plan(Start::Committed, None);
        let earliest = || plan(Start::Earliest, None);
        let cases: Vec<Case> = vec![
            (
                "nothing stored: the group's offsets",
                (10, 100, 0, 100),
                vec![],
                false,
                committed(),
                (10, 100),
            ),
            (
                "stored past the commit (crash before commit): after the files",
                (10, 100, 0, 100),
                vec![(0, 49)],
                false,
                committed(),
                (50, 100),
            ),
            (
                "stored behind the commit: the commit wins for files",
                (60, 100, 0, 100),
                vec![(0, 49)],
                false,
                committed(),
                (60, 100),
            ),
            (
                "stored behind the commit: a Delta txn decides",
                (60, 100, 0, 100),
                vec![(0, 49)],
                true,
                committed(),
                (50, 100),
            ),
            (
                "stored past the end: nothing read",
                (10, 100, 0, 100),
                vec![(0, 149)],
                false,
                committed(),
                (100, 100),
            ),
            (
                "stored below what retention kept: from the earliest",
                (10, 100, 40, 100),
                vec![(0, 19)],
                false,
                committed(),
                (40, 100),
            ),
            (
                "a cap counts from where the run starts",
                (10, 100, 0, 100),
                vec![(0, 49)],
                false,
                plan(Start::Committed, Some(20)),
                (50, 70),
            ),
            (
                "a re-export starting inside a file rewrites it whole",
                (25, 100, 0, 100),
                vec![(0, 49), (50, 99)],
                false,
                earliest(),
                (0, 100),
            ),
            (
                "a re-export ending inside a file rewrites it whole",
                (0, 60, 0, 100),
                vec![(0, 49), (50, 99)],
                false,
                plan(Start::Offsets(BTreeMap::from([(0, 0)])), Some(60)),
                (0, 100),
            ),
            (
                "a file whose start retention deleted cannot be rewritten: after it",
                (50, 200, 50, 200),
                vec![(0, 99), (100, 199)],
                false,
                earliest(),
                (100, 200),
            ),
            (
                "a file holding the partition's end is not read into",
                (0, 150, 0, 150),
                vec![(100, 199)],
                false,
                earliest(),
                (0, 100),
            ),
            (
                "nothing to read stays nothing",
                (30, 30, 0, 100),
                vec![(0, 49)],
                false,
                earliest(),
                (30, 30),
            ),
        ];
        for (case, (start, end, low, high), files, decides, plan, expected) in cases {
            let got = still_needed(
                range(start, end, low, high),
                &Files::new(&files, decides),
                &plan,
            );
            assert_eq!((got.start, got.end), expected, "{case}");
            assert_eq!((got.low, got.high), (low, high), "{case}: watermarks kept");
        }
    }

    #[test]
    fn an_aggregator_reads_back_to_what_was_aggregated_and_writes_from_what_is_stored() {
        let needed = range(50, 100, 0, 100);
        let plan = with_unaggregated(needed, 20);
        assert_eq!(
            (plan.read.start, plan.read.end, plan.write_from),
            (20, 100, 50)
        );
        // Aggregated past what is stored (a crash after the aggregate and
        // before the commit): nothing read twice.
        let plan = with_unaggregated(needed, 80);
        assert_eq!((plan.read.start, plan.write_from), (50, 50));
        // Retention deleted part of what was not aggregated.
        let plan = with_unaggregated(range(50, 100, 30, 100), 20);
        assert_eq!((plan.read.start, plan.write_from), (30, 50));
    }
}
