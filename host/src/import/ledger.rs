//! The progress file: which files of a folder were imported into a topic,
//! and how many rows of each are acknowledged. It lives in the imported
//! folder itself (`_sluice_import/<topic>.json`), so a re-run finds it
//! wherever it runs, on a laptop or in Azure. It is written only by the
//! import holding the lease (`lease.rs`), and each write is a swap on the
//! version this import last read or wrote: should another import have
//! taken the lease over and written it meanwhile (this one stalled past
//! its lease), the write fails instead of undoing the other's record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ImportError;
use super::source::Source;
use crate::storage::Version;

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
    /// The file as last read or written here.
    version: Version,
}

impl Ledger {
    /// The topic's progress file, or an empty one when there is none yet.
    /// One that cannot be parsed stops the import: guessing could skip or
    /// repeat files.
    pub fn load(source: &Source, topic: &str) -> Result<Ledger, ImportError> {
        let key = progress_key(topic);
        let location = source.describe(&key);
        let (bytes, version) = source.storage.get_versioned(&key)?;
        let progress = match bytes {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| ImportError::BadProgress {
                    location,
                    reason: e.to_string(),
                })?
            }
            None => Progress {
                topic: topic.to_owned(),
                files: BTreeMap::new(),
            },
        };
        Ok(Ledger {
            key,
            progress,
            version,
        })
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
        self.version = source
            .storage
            .swap(&self.key, &self.version, bytes.into())?
            .ok_or_else(|| ImportError::ProgressChanged {
                location: source.describe(&self.key),
            })?;
        Ok(())
    }
}
