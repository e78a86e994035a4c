//! Compare-and-swap of the importer's own small files (the lease and the
//! progress file): a write that happens only if the file is still as this
//! process last saw it, so that of two importers acting on the same
//! version, exactly one succeeds and the other learns it lost.
//!
//! On Azure this is the store's own condition: a create-only put
//! (`If-None-Match: *`) or a put on the ETag last seen (`If-Match`). A
//! local folder has no ETags that can be trusted for this (object_store's
//! `LocalFileSystem` refuses `PutMode::Update`, and its ETag of inode,
//! size and modification time can repeat when a freed inode is reused
//! within the clock's resolution), so there the comparison is of the bytes
//! themselves, made under an OS lock (`flock`) held around the whole
//! read-compare-write-rename: no other importer on the machine can write
//! between the read and the rename.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::error::ImportError;
use super::source::Source;
use crate::storage::object_path;

/// An empty file in each folder holding lease or progress files, locked
/// around each local compare-and-swap. It is never removed: a process that
/// opened it before a removal would lock a file nobody else can see.
const GUARD: &str = ".swap-guard";

/// A file as this process last read or wrote it: what a swap compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Version {
    /// There was no such file.
    Absent,
    /// Its ETag, from Azure.
    ETag(String),
    /// Its bytes, in a local folder.
    Content(Bytes),
}

impl Source {
    /// The bytes of `key` (`None` when it does not exist) and its version.
    pub fn get_versioned(&self, key: &str) -> Result<(Option<Bytes>, Version), ImportError> {
        let error = |reason: String| ImportError::Store {
            location: self.describe(key),
            reason,
        };
        if let Some(path) = self.local_path(key)? {
            // Local writes are renames: a read sees one whole version.
            return match std::fs::read(&path) {
                Ok(bytes) => {
                    let bytes = Bytes::from(bytes);
                    Ok((Some(bytes.clone()), Version::Content(bytes)))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, Version::Absent)),
                Err(e) => Err(error(e.to_string())),
            };
        }
        let (store, path) = (self.store.clone(), object_path(&self.prefix, key));
        let got = crate::io::wait(async move {
            match store.get(&path).await {
                Ok(found) => {
                    let e_tag = found.meta.e_tag.clone();
                    found.bytes().await.map(|bytes| Some((bytes, e_tag)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| error(e.to_string()))?;
        match got {
            None => Ok((None, Version::Absent)),
            Some((bytes, Some(e_tag))) => Ok((Some(bytes), Version::ETag(e_tag))),
            Some((_, None)) => Err(error("the store gave no ETag".into())),
        }
    }

    /// Writes `bytes` to `key` if it is still at `expected`: the new
    /// version when it was, `None` when someone else changed it first. An
    /// error leaves it unknown whether the write happened (an answer lost
    /// on the network); the caller's next swap then finds out.
    pub fn swap(
        &self,
        key: &str,
        expected: &Version,
        bytes: Vec<u8>,
    ) -> Result<Option<Version>, ImportError> {
        match self.local_path(key)? {
            Some(path) => self.swap_local(key, &path, expected, bytes),
            None => self.swap_remote(key, expected, bytes),
        }
    }

    fn swap_remote(
        &self,
        key: &str,
        expected: &Version,
        bytes: Vec<u8>,
    ) -> Result<Option<Version>, ImportError> {
        let mode = match expected {
            Version::Absent => PutMode::Create,
            Version::ETag(e_tag) => PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag.clone()),
                version: None,
            }),
            // Not a version this store gave: it cannot be current.
            Version::Content(_) => return Ok(None),
        };
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let (store, path) = (self.store.clone(), object_path(&self.prefix, key));
        let put = crate::io::wait(async move {
            store
                .put_opts(&path, PutPayload::from(bytes), options)
                .await
        });
        let error = |reason: String| ImportError::Store {
            location: self.describe(key),
            reason,
        };
        match put {
            Ok(done) => done
                .e_tag
                .map(|e_tag| Some(Version::ETag(e_tag)))
                .ok_or_else(|| error("the store gave no ETag".into())),
            // Azure answers 409 or 412 when a create finds the blob, 412
            // when the ETag differs, 404 when it was removed.
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. }
                | object_store::Error::NotFound { .. },
            ) => Ok(None),
            Err(e) => Err(error(e.to_string())),
        }
    }

    fn swap_local(
        &self,
        key: &str,
        path: &Path,
        expected: &Version,
        bytes: Vec<u8>,
    ) -> Result<Option<Version>, ImportError> {
        let error = |reason: String| ImportError::Store {
            location: self.describe(key),
            reason,
        };
        let folder = path
            .parent()
            .ok_or_else(|| error("not inside a folder".into()))?;
        std::fs::create_dir_all(folder).map_err(|e| error(e.to_string()))?;
        let guard = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(folder.join(GUARD))
            .map_err(|e| error(format!("opening {GUARD}: {e}")))?;
        // Released when `guard` is closed, on return or when the process
        // dies.
        guard
            .lock()
            .map_err(|e| error(format!("locking {GUARD}: {e}")))?;
        let current = match std::fs::read(path) {
            Ok(bytes) => Version::Content(Bytes::from(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Version::Absent,
            Err(e) => return Err(error(e.to_string())),
        };
        if current != *expected {
            return Ok(None);
        }
        // Written beside the file, then moved over it by `Storage::upload`
        // (synced, renamed, the folder synced): a reader sees the old or
        // the new bytes, and a power cut keeps one of them.
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let staged = folder.join(format!(".{name}.{}.swap", std::process::id()));
        let written = std::fs::write(&staged, &bytes)
            .map_err(|e| error(e.to_string()))
            .and_then(|()| Ok(self.storage.upload(&staged, key)?));
        if written.is_err() {
            let _ = std::fs::remove_file(&staged);
        }
        written?;
        drop(guard);
        Ok(Some(Version::Content(Bytes::from(bytes))))
    }
}
