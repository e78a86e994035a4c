//! A table's log read into what an export needs of its latest version: the
//! protocol and metadata, the `txn` version of each writer, and which live
//! data files Sluice wrote (partition and offsets, from their tags). Read
//! from the last checkpoint (`_last_checkpoint`, else the newest one a
//! listing finds) and the commits after it, one by one until the next
//! version is missing: versions are contiguous, since each is created only
//! once the one before it exists.

use std::collections::BTreeMap;
use std::path::Path;

use super::actions::{Action, FileRange, Metadata, Protocol, parse_commit};
use super::checkpoint;
use super::error::DeltaError;
use super::files::{LastCheckpoint, commit_key, last_checkpoint_key};
use crate::export::layout;
use crate::export::stored::{Held, StoredFile};
use crate::storage::Storage;

/// A live data file of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFile {
    /// Which records it holds, when Sluice wrote it.
    pub range: Option<FileRange>,
    /// Its partition values (`dt`, `hour`), when the table has any.
    pub partition_values: BTreeMap<String, String>,
    pub size: i64,
    /// Its dead letters, relative to the table.
    pub dead_letters: Option<String>,
}

/// The table at its latest version, as far as an export needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    topic: String,
    version: Option<u64>,
    protocol: Option<Protocol>,
    metadata: Option<Metadata>,
    txns: BTreeMap<String, i64>,
    /// Live data files by path: Sluice's with the records they hold,
    /// other writers' (an OPTIMIZE's, say) without.
    files: BTreeMap<String, LiveFile>,
    /// The version of the newest checkpoint known.
    checkpoint: Option<u64>,
}

impl Snapshot {
    /// A table that does not exist yet.
    pub fn empty(topic: &str) -> Self {
        Snapshot {
            topic: topic.to_owned(),
            version: None,
            protocol: None,
            metadata: None,
            txns: BTreeMap::new(),
            files: BTreeMap::new(),
            checkpoint: None,
        }
    }

    /// The latest version of the table of `topic`, or an empty snapshot
    /// when it has no log. A checkpoint is downloaded into `staging` and
    /// read a batch at a time.
    pub fn load(storage: &Storage, topic: &str, staging: &Path) -> Result<Self, DeltaError> {
        let mut snapshot = Snapshot::empty(topic);
        let start = match last_checkpoint(storage, topic)? {
            Some(last) if last.parts.is_none() => Some(last.version),
            _ => newest_checkpoint(storage, topic)?,
        };
        if let Some(version) = start {
            checkpoint::read(storage, topic, version, staging, |action| {
                snapshot.apply_one(&action);
                Ok(())
            })?;
            snapshot.version = Some(version);
            snapshot.checkpoint = Some(version);
        }
        loop {
            let version = snapshot.next_version();
            if snapshot.version == Some(version) {
                break; // u64::MAX: no version after it
            }
            let key = commit_key(topic, version);
            let Some(bytes) = storage.get_if_exists(&key)? else {
                break;
            };
            let actions =
                parse_commit(&bytes).map_err(|reason| DeltaError::Corrupt { key, reason })?;
            snapshot.apply(version, &actions);
        }
        if snapshot.version.is_none() && has_commits(storage, topic)? {
            return Err(DeltaError::LogGap {
                table: layout::delta_table(topic),
                missing: 0,
            });
        }
        Ok(snapshot)
    }

    /// The state after `actions`, committed as `version`.
    pub fn apply(&mut self, version: u64, actions: &[Action]) {
        for action in actions {
            self.apply_one(action);
        }
        self.version = Some(version);
    }

    /// Action reconciliation (`PROTOCOL.md`): the latest protocol, metadata
    /// and version per `appId` win; a remove drops the file.
    fn apply_one(&mut self, action: &Action) {
        if let Some(protocol) = &action.protocol {
            self.protocol = Some(protocol.clone());
        }
        if let Some(metadata) = &action.metadata {
            self.metadata = Some(metadata.clone());
        }
        if let Some(txn) = &action.txn {
            self.txns.insert(txn.app_id.clone(), txn.version);
        }
        if let Some(add) = &action.add {
            let live = LiveFile {
                range: add.range(),
                partition_values: add
                    .partition_values
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                    .collect(),
                size: add.size,
                dead_letters: add
                    .tags
                    .as_ref()
                    .and_then(|t| t.get(super::actions::TAG_DEAD_LETTERS)?.clone()),
            };
            self.files.insert(add.path.clone(), live);
        }
        if let Some(remove) = &action.remove {
            self.files.remove(&remove.path);
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The version the next commit creates.
    pub fn next_version(&self) -> u64 {
        // Saturating: a version read from a foreign `_last_checkpoint` can be anything.
        self.version.map_or(0, |v| v.saturating_add(1))
    }

    pub fn protocol(&self) -> Option<&Protocol> {
        self.protocol.as_ref()
    }

    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    /// The last version a writer committed under `app_id`.
    pub fn txn(&self, app_id: &str) -> Option<i64> {
        self.txns.get(app_id).copied()
    }

    pub fn checkpoint(&self) -> Option<u64> {
        self.checkpoint
    }

    pub fn set_checkpoint(&mut self, version: u64) {
        self.checkpoint = Some(version);
    }

    /// Live data files another writer made.
    pub fn foreign_files(&self) -> usize {
        self.files.values().filter(|f| f.range.is_none()).count()
    }

    /// Sluice's live files of `partition`, by first offset.
    pub fn files_of(&self, partition: i32) -> Vec<StoredFile> {
        let mut files: Vec<StoredFile> = self
            .files
            .iter()
            .filter_map(|(path, live)| {
                let range = live.range.filter(|r| r.partition == partition)?;
                Some(StoredFile {
                    key: path.clone(),
                    first: range.first,
                    last: range.last,
                })
            })
            .collect();
        files.sort_by_key(|f| (f.first, f.last));
        files
    }

    /// Every live file, by path.
    pub fn live(&self) -> &BTreeMap<String, LiveFile> {
        &self.files
    }

    /// The files of `partition` as far as planning a run needs them, for
    /// the writer `app_id`.
    pub fn partition(&self, app_id: &str, partition: i32) -> TablePartition {
        TablePartition {
            txn: self.txn(app_id),
            files: self.files_of(partition),
        }
    }
}

/// What the table holds of one partition.
#[derive(Debug, Clone)]
pub struct TablePartition {
    /// The last offset this export's group committed to the table.
    txn: Option<i64>,
    files: Vec<StoredFile>,
}

impl Held for TablePartition {
    /// After the group's `txn` version. A table without one for this group
    /// (the group was renamed, say) still holds what its files hold: the
    /// run goes on after them instead of writing their records again.
    fn next_offset(&self) -> Option<i64> {
        match self.txn {
            Some(last) => Some(last.saturating_add(1)),
            None => self.files.iter().map(|f| f.last.saturating_add(1)).max(),
        }
    }

    /// The table, not the group, decides where the group's run resumes.
    fn decides(&self) -> bool {
        self.txn.is_some()
    }

    fn covering(&self, offset: i64) -> Option<&StoredFile> {
        self.files
            .iter()
            .find(|f| f.first <= offset && offset <= f.last)
    }
}

fn last_checkpoint(storage: &Storage, topic: &str) -> Result<Option<LastCheckpoint>, DeltaError> {
    let key = last_checkpoint_key(topic);
    let Some(bytes) = storage.get_if_exists(&key)? else {
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(last) => Ok(Some(last)),
        Err(error) => {
            // Only a hint: a listing finds the checkpoints too.
            tracing::warn!(key, %error, "unreadable _last_checkpoint; listing the log instead");
            Ok(None)
        }
    }
}

/// The version of the newest single-part checkpoint in the log folder.
fn newest_checkpoint(storage: &Storage, topic: &str) -> Result<Option<u64>, DeltaError> {
    Ok(storage
        .list(&layout::delta_log(topic))?
        .iter()
        .filter_map(|key| {
            let name = key.rsplit('/').next()?;
            let version = name.strip_suffix(".checkpoint.parquet")?;
            (version.len() == 20).then_some(())?;
            version.parse().ok()
        })
        .max())
}

fn has_commits(storage: &Storage, topic: &str) -> Result<bool, DeltaError> {
    Ok(storage
        .list(&layout::delta_log(topic))?
        .iter()
        .any(|key| key.ends_with(".json")))
}
