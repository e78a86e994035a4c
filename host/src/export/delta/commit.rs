//! Committing to a table: its actions put create-only as the next version
//! of the log, so that of two writers exactly one makes each version.
//! When another writer made it first, that commit is read: if it touches
//! nothing this one does (the same `txn` appId, a file this one replaces,
//! offsets this one adds, the protocol or schema) this one goes on top of
//! it, else it stops with a conflict. When the put's answer is lost (a
//! timeout, a dropped connection), the version is read back before any
//! retry: this commit's own bytes there mean it was made. Nothing is ever
//! deleted because a commit failed: its data files may be in the table.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;

use super::actions::{Action, FileRange, encode_commit, parse_commit};
use super::error::DeltaError;
use super::files::commit_key;
use super::log::Snapshot;
use crate::export::layout;
use crate::retry::Backoff;
use crate::storage::{Storage, StorageError};

/// Where a log is put and read: the export's storage, or a test's.
pub trait LogStore {
    /// See [`Storage::put_if_absent`].
    fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool, StorageError>;
    /// See [`Storage::get_if_exists`].
    fn get_if_exists(&self, key: &str) -> Result<Option<Bytes>, StorageError>;
    /// How long to wait after a put whose answer was lost, before the log
    /// is read back: a store that timed out may need a moment.
    fn lost_answer_backoff(&self) -> Backoff {
        LOST_ANSWER_BACKOFF
    }
}

impl LogStore for Storage {
    fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool, StorageError> {
        Storage::put_if_absent(self, key, bytes)
    }

    fn get_if_exists(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        Storage::get_if_exists(self, key)
    }
}

/// Other writers' commits gone on top of, at most, before giving up.
const MAX_CONFLICTS: usize = 50;
/// Puts whose answer was lost (and reads that found nothing after them),
/// at most, before giving up.
const MAX_LOST: u32 = 8;

/// 20 ms, doubling to 2 s, for each of the lost answers.
const LOST_ANSWER_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(20),
    max: Duration::from_secs(2),
    retries: MAX_LOST as usize,
};

/// Commits `actions` (a `commitInfo` first, with a unique `txnId` so that
/// its bytes are this commit's alone) on top of `snapshot`, which then
/// holds the new version. Returns that version.
pub fn commit(
    log: &dyn LogStore,
    snapshot: &mut Snapshot,
    actions: Vec<Action>,
) -> Result<u64, DeltaError> {
    let table = layout::delta_table(snapshot.topic());
    let bytes = Bytes::from(encode_commit(&actions).map_err(|e| DeltaError::Corrupt {
        key: commit_key(snapshot.topic(), snapshot.next_version()),
        reason: e.to_string(),
    })?);
    let touched = Touched::of(&actions);
    let mut lost = 0u32;
    let mut waits = log.lost_answer_backoff().delays();
    let mut conflicts = 0usize;
    loop {
        let version = snapshot.next_version();
        let key = commit_key(snapshot.topic(), version);
        crate::crash_point!("delta::before-commit");
        let found = match log.put_if_absent(&key, bytes.clone()) {
            Ok(true) => {
                snapshot.apply(version, &actions);
                return Ok(version);
            }
            // Another writer's version, or this one's own put answered
            // twice (a retry after a lost answer): read it to tell.
            Ok(false) => log.get_if_exists(&key),
            Err(error) => {
                lost += 1;
                tracing::warn!(table, version, %error, attempt = lost, "commit outcome unknown; reading the log before any retry");
                if lost > MAX_LOST {
                    return Err(DeltaError::UnknownOutcome {
                        table,
                        version,
                        reason: error.to_string(),
                    });
                }
                if let Some(wait) = waits.next() {
                    std::thread::sleep(wait);
                }
                log.get_if_exists(&key)
            }
        };
        let found = match found {
            Ok(Some(found)) => found,
            // Not there: the put did not happen; the same version again.
            Ok(None) if lost < MAX_LOST => {
                lost += 1;
                continue;
            }
            Ok(None) => {
                return Err(DeltaError::UnknownOutcome {
                    table,
                    version,
                    reason: "the store says the version exists, and then that it does not".into(),
                });
            }
            Err(error) => {
                return Err(DeltaError::UnknownOutcome {
                    table,
                    version,
                    reason: format!("and reading it back failed: {error}"),
                });
            }
        };
        if found == bytes {
            snapshot.apply(version, &actions);
            return Ok(version);
        }
        let theirs = parse_commit(&found).map_err(|reason| DeltaError::Corrupt {
            key: key.clone(),
            reason,
        })?;
        if let Some(reason) = touched.conflict(&theirs) {
            return Err(DeltaError::Conflict {
                table,
                version,
                reason,
            });
        }
        conflicts += 1;
        if conflicts > MAX_CONFLICTS {
            return Err(DeltaError::Conflict {
                table,
                version,
                reason: format!("{MAX_CONFLICTS} other commits came first"),
            });
        }
        tracing::info!(
            table,
            version,
            "another writer committed this version first; committing on top of it"
        );
        snapshot.apply(version, &theirs);
    }
}

/// What a commit depends on, to tell whether another one conflicts.
struct Touched {
    app_ids: BTreeSet<String>,
    removed: BTreeSet<String>,
    ranges: BTreeMap<i32, Vec<(i64, i64)>>,
}

impl Touched {
    fn of(actions: &[Action]) -> Self {
        let mut touched = Touched {
            app_ids: BTreeSet::new(),
            removed: BTreeSet::new(),
            ranges: BTreeMap::new(),
        };
        for action in actions {
            if let Some(txn) = &action.txn {
                touched.app_ids.insert(txn.app_id.clone());
            }
            if let Some(remove) = &action.remove {
                touched.removed.insert(remove.path.clone());
            }
            if let Some(FileRange {
                partition,
                first,
                last,
                ..
            }) = action.add.as_ref().and_then(|a| a.range())
            {
                touched
                    .ranges
                    .entry(partition)
                    .or_default()
                    .push((first, last));
            }
        }
        touched
    }

    /// Why `theirs`, committed first, leaves this commit wrong, if it does.
    fn conflict(&self, theirs: &[Action]) -> Option<String> {
        for action in theirs {
            if action.protocol.is_some() || action.metadata.is_some() {
                return Some("its protocol or schema changed".into());
            }
            if let Some(txn) = action
                .txn
                .as_ref()
                .filter(|t| self.app_ids.contains(&t.app_id))
            {
                return Some(format!(
                    "another run of `{}` committed up to offset {}",
                    txn.app_id, txn.version
                ));
            }
            if let Some(remove) = action
                .remove
                .as_ref()
                .filter(|r| self.removed.contains(&r.path))
            {
                return Some(format!("`{}` was removed by another run", remove.path));
            }
            if let Some(range) = action.add.as_ref().and_then(|a| a.range()) {
                let overlaps = self.ranges.get(&range.partition).is_some_and(|ours| {
                    ours.iter()
                        .any(|(first, last)| *first <= range.last && range.first <= *last)
                });
                if overlaps {
                    return Some(format!(
                        "another run added offsets {}-{} of partition {}",
                        range.first, range.last, range.partition
                    ));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;
    use crate::export::delta::actions::{Add, Protocol, StringMap, Txn};

    /// A log in memory whose puts can lose their answer after storing.
    #[derive(Default)]
    struct Memory {
        objects: RefCell<BTreeMap<String, Bytes>>,
        /// Puts to answer with an error, after storing (or not).
        lose_answers: Cell<u32>,
        store_when_lost: Cell<bool>,
    }

    impl LogStore for Memory {
        fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool, StorageError> {
            let lose = self.lose_answers.get();
            if lose > 0 {
                self.lose_answers.set(lose - 1);
                if self.store_when_lost.get() {
                    self.objects.borrow_mut().entry(key.into()).or_insert(bytes);
                }
                return Err(StorageError::Store {
                    location: key.into(),
                    failure: crate::storage::Failure::Transient,
                    reason: "connection reset".into(),
                });
            }
            let mut objects = self.objects.borrow_mut();
            if objects.contains_key(key) {
                return Ok(false);
            }
            objects.insert(key.into(), bytes);
            Ok(true)
        }

        fn get_if_exists(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
            Ok(self.objects.borrow().get(key).cloned())
        }

        /// Answers are lost on purpose here: no need to wait for them.
        fn lost_answer_backoff(&self) -> crate::retry::Backoff {
            crate::retry::Backoff {
                first: Duration::from_millis(1),
                max: Duration::from_millis(1),
                retries: super::MAX_LOST as usize,
            }
        }
    }

    fn txn(app_id: &str, version: i64) -> Action {
        Action {
            txn: Some(Txn {
                app_id: app_id.into(),
                version,
                last_updated: None,
            }),
            ..Action::default()
        }
    }

    fn info(id: &str) -> Action {
        Action {
            commit_info: Some(serde_json::json!({"txnId": id})),
            ..Action::default()
        }
    }

    fn add(partition: i32, first: i64, last: i64) -> Action {
        let tags: StringMap = [
            ("sluice.partition", partition.to_string()),
            ("sluice.firstOffset", first.to_string()),
            ("sluice.lastOffset", last.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Some(v)))
        .collect();
        Action {
            add: Some(Add {
                path: format!("part-{partition}-{first}-{last}.parquet"),
                partition_values: StringMap::new(),
                size: 1,
                modification_time: 1,
                data_change: true,
                stats: None,
                tags: Some(tags),
            }),
            ..Action::default()
        }
    }

    fn put(log: &Memory, version: u64, actions: &[Action]) {
        log.objects.borrow_mut().insert(
            commit_key("t", version),
            Bytes::from(encode_commit(actions).unwrap()),
        );
    }

    fn created() -> (Memory, Snapshot) {
        let log = Memory::default();
        let mut snapshot = Snapshot::empty("t");
        let create = vec![
            info("create"),
            Action {
                protocol: Some(Protocol::sluice()),
                ..Action::default()
            },
        ];
        assert_eq!(commit(&log, &mut snapshot, create).unwrap(), 0);
        (log, snapshot)
    }

    #[test]
    fn a_commit_goes_on_top_of_another_writers_that_touches_nothing_of_it() {
        let (log, mut snapshot) = created();
        // Another group exported other offsets as version 1 meanwhile.
        put(&log, 1, &[info("other"), txn("other-0", 9), add(0, 0, 9)]);
        let ours = vec![info("ours"), txn("g-0", 19), add(0, 10, 19)];
        assert_eq!(commit(&log, &mut snapshot, ours).unwrap(), 2);
        assert_eq!(snapshot.version(), Some(2));
        assert_eq!(
            (snapshot.txn("g-0"), snapshot.txn("other-0")),
            (Some(19), Some(9))
        );
    }

    #[test]
    fn a_commit_stops_on_a_writer_that_committed_the_same_partitions() {
        let (log, mut snapshot) = created();
        put(&log, 1, &[info("other"), txn("g-0", 9), add(0, 0, 9)]);
        let error = commit(
            &log,
            &mut snapshot,
            vec![info("ours"), txn("g-0", 9), add(0, 0, 9)],
        )
        .unwrap_err();
        assert!(
            matches!(&error, DeltaError::Conflict { version: 1, reason, .. } if reason.contains("g-0")),
            "{error}"
        );
        // Overlapping offsets under another appId conflict too.
        let error = commit(
            &log,
            &mut snapshot,
            vec![info("ours"), txn("h-0", 5), add(0, 5, 5)],
        )
        .unwrap_err();
        assert!(error.to_string().contains("offsets 0-9"), "{error}");
        assert_eq!(log.objects.borrow().len(), 2, "nothing written over");
    }

    #[test]
    fn a_lost_answer_is_read_back_before_any_retry() {
        // The put stored the commit, then its answer was lost: the commit
        // is found in the log, and not made a second time.
        let (log, mut snapshot) = created();
        log.lose_answers.set(1);
        log.store_when_lost.set(true);
        let ours = vec![info("ours"), txn("g-0", 9), add(0, 0, 9)];
        assert_eq!(commit(&log, &mut snapshot, ours).unwrap(), 1);
        assert_eq!(log.objects.borrow().len(), 2);
        assert_eq!(snapshot.txn("g-0"), Some(9));

        // The put did not store it: the same version is put again.
        log.lose_answers.set(2);
        log.store_when_lost.set(false);
        let next = vec![info("next"), txn("g-0", 19), add(0, 10, 19)];
        assert_eq!(commit(&log, &mut snapshot, next).unwrap(), 2);

        // Answers lost again and again: the run stops, the outcome unknown.
        log.lose_answers.set(u32::MAX);
        let error = commit(&log, &mut snapshot, vec![info("last"), txn("g-0", 29)]).unwrap_err();
        assert!(
            matches!(error, DeltaError::UnknownOutcome { version: 3, .. }),
            "{error}"
        );
        assert_eq!(snapshot.version(), Some(2));
    }
}
