//! The progress file: which files of a folder were imported into a topic,
//! and how many rows of each are acknowledged. It lives in the imported
//! folder itself (`_sluice_import/<topic>.json`), so a re-run finds it
//! wherever it runs, on a laptop or in Azure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ImportError;
use super::source::Source;

/// The folder, under the import URL, holding progress files.
pub const PROGRESS_DIR: &str = "_sluice_import";

/// The progress file of `topic`, relative to the import URL.
pub fn progress_key(topic: &str) -> String {
    format!("{PROGRESS_DIR}/{topic}.json")
}

/// The progress file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub topic: String,
    /// By path relative to the import URL.
    pub files: BTreeMap<String, FileProgress>,
}

/// One file's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    /// The file's size when it was imported: a file that changed since is
    /// not imported again silently.
    pub size: u64,
    /// The store's identity of the content then (ETag or modification
    /// time), so a file rewritten with the same size is noticed too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Rows produced and acknowledged, from the file's start.
    pub rows: u64,
    /// Every row is acknowledged.
    pub done: bool,
}

pub(crate) struct Ledger {
    key: String,
    progress: Progress,
}

impl Ledger {
    /// The topic's progress file, or an empty one when there is none yet.
    /// One that cannot be parsed stops the import: guessing could skip or
    /// repeat files.
    pub fn load(source: &Source, topic: &str) -> Result<Ledger, ImportError> {
        let key = progress_key(topic);
        let location = source.describe(&key);
        let progress = match source.get(&key) {
            Ok(Some(bytes)) => {
                serde_json::from_slice(&bytes).map_err(|e| ImportError::BadProgress {
                    location,
                    reason: e.to_string(),
                })?
            }
            Ok(None) => Progress {
                topic: topic.to_owned(),
                files: BTreeMap::new(),
            },
            Err(e) => {
                return Err(ImportError::Store {
                    location,
                    reason: e.to_string(),
                });
            }
        };
        Ok(Ledger { key, progress })
    }

    pub fn file(&self, path: &str) -> Option<&FileProgress> {
        self.progress.files.get(path)
    }

    /// Records `progress` for `path` and writes the file at once.
    pub fn record(
        &mut self,
        source: &Source,
        path: &str,
        progress: FileProgress,
    ) -> Result<(), ImportError> {
        self.progress.files.insert(path.to_owned(), progress);
        let bytes =
            serde_json::to_vec_pretty(&self.progress).map_err(|e| ImportError::BadProgress {
                location: source.describe(&self.key),
                reason: e.to_string(),
            })?;
        source.put(&self.key, bytes)
    }
}

/// The lock of `topic`'s import of a folder, relative to the import URL.
pub fn lock_key(topic: &str) -> String {
    format!("{PROGRESS_DIR}/{topic}.lock")
}

/// A lock not refreshed for this long belongs to an import that died.
const STALE_LOCK: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Debug, Serialize, Deserialize)]
struct LockHolder {
    owner: String,
    /// Milliseconds since the Unix epoch.
    refreshed_at_ms: u64,
}

/// One import of a folder into a topic at a time: two would each rewrite
/// the progress file from what they read, and one would undo the other's
/// record (and repeat its rows). Taken with a create-only write, so of two
/// starting at once exactly one gets it; refreshed with every progress
/// write; removed when the import ends. A lock left by an import that
/// died is taken over once it is older than ten minutes.
pub(crate) struct ImportLock<'a> {
    source: &'a Source,
    key: String,
    owner: String,
    refreshed: std::cell::Cell<std::time::Instant>,
}

impl<'a> ImportLock<'a> {
    pub fn take(source: &'a Source, topic: &str) -> Result<Self, ImportError> {
        let key = lock_key(topic);
        let owner = format!(
            "{}-{}",
            std::process::id(),
            crate::export::new_run_id().trim_start_matches("run-")
        );
        let lock = ImportLock {
            source,
            key,
            owner,
            refreshed: std::cell::Cell::new(std::time::Instant::now()),
        };
        if source.create(&lock.key, lock.holder())? {
            return Ok(lock);
        }
        let held: Option<LockHolder> = source
            .get(&lock.key)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let age_ms = held
            .as_ref()
            .map_or(u64::MAX, |h| now_ms().saturating_sub(h.refreshed_at_ms));
        if u128::from(age_ms) < STALE_LOCK.as_millis() {
            return Err(ImportError::Busy {
                location: source.describe(&lock.key),
                owner: held.map(|h| h.owner).unwrap_or_default(),
                seconds: age_ms / 1000,
            });
        }
        tracing::warn!(lock = %source.describe(&lock.key), "taking over the lock of an import that stopped refreshing it");
        source.put(&lock.key, lock.holder())?;
        Ok(lock)
    }

    fn holder(&self) -> Vec<u8> {
        serde_json::to_vec(&LockHolder {
            owner: self.owner.clone(),
            refreshed_at_ms: now_ms(),
        })
        .unwrap_or_default()
    }

    /// Says the import is still alive, once a minute at most.
    pub fn refresh_now_and_then(&self) -> Result<(), ImportError> {
        if self.refreshed.get().elapsed() < STALE_LOCK / 10 {
            return Ok(());
        }
        self.refreshed.set(std::time::Instant::now());
        self.source.put(&self.key, self.holder())
    }
}

impl Drop for ImportLock<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.source.delete(&self.key) {
            tracing::warn!(%error, "could not remove the import's lock; the next import takes it over after ten minutes");
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
