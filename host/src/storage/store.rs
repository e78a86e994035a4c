//! The one object store: a local folder or Azure (or any `ObjectStore`, for
//! tests), with each operation written once. Async, for the registry (the
//! admin routes await it); [`super::Storage`] is the same store for plain
//! threads.
//!
//! Keys are `/`-separated and name objects as listings give them back: a
//! listed key reads the object it came from, whatever its characters.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};

use super::error::{Failure, StorageError};
use super::folder::{self, Mode};
use super::swap::{Version, swap_local};
use super::target::{self, AzureCredentials, Missing};

#[derive(Clone)]
pub struct Store {
    /// For messages: `<url>/<key>`.
    url: String,
    store: Arc<dyn ObjectStore>,
    /// Keys are under this folder of the store (empty: at its root).
    prefix: ObjectPath,
    /// The folder as given and the store on it, when it is local.
    local: Option<(PathBuf, Arc<LocalFileSystem>)>,
}

/// What a folder holds directly: its objects' keys and its folders' keys,
/// each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub files: Vec<String>,
    pub folders: Vec<String>,
}

/// An object found by a recursive listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

impl Store {
    /// The store at `url` (see [`Store::open_existing`]); a missing local
    /// folder is made.
    pub fn open(url: &str, azure: &AzureCredentials) -> Result<Self, StorageError> {
        Self::from_target(url, target::open(url, azure, Missing::Create)?)
    }

    /// The store at `url`: `file:///dir` or a plain path, a local folder,
    /// which must exist (a mistyped path to read from is an error, not an
    /// empty folder); `az://container/dir`,
    /// `abfss://filesystem@account.dfs.core.windows.net/dir`: Azure.
    pub fn open_existing(url: &str, azure: &AzureCredentials) -> Result<Self, StorageError> {
        Self::from_target(url, target::open(url, azure, Missing::Refuse)?)
    }

    fn from_target(url: &str, target: target::Target) -> Result<Self, StorageError> {
        Ok(Store {
            url: url.trim_end_matches('/').to_owned(),
            store: target.store,
            prefix: target.prefix,
            local: target.local,
        })
    }

    /// A store on an object store the caller built (another backend, or one
    /// that injects latency or faults in a test); `url` only names it in
    /// messages.
    pub fn on_object_store(url: &str, store: Arc<dyn ObjectStore>) -> Self {
        Store {
            url: url.trim_end_matches('/').to_owned(),
            store,
            prefix: ObjectPath::ROOT,
            local: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where `key` is, for messages.
    pub fn describe(&self, key: &str) -> String {
        match key {
            "" => self.url.clone(),
            key => format!("{}/{key}", self.url),
        }
    }

    /// The local folder, as given, when the store is one.
    pub fn local_root(&self) -> Option<&Path> {
        self.local.as_ref().map(|(root, _)| root.as_path())
    }

    /// Where `key` is on disk, when the store is a local folder.
    pub fn local_path(&self, key: &str) -> Result<Option<PathBuf>, StorageError> {
        let Some((_, folder)) = &self.local else {
            return Ok(None);
        };
        let path = self.path(key)?;
        folder
            .path_to_filesystem(&path)
            .map(Some)
            .map_err(|e| self.error(key, e))
    }

    /// The bytes stored at `key`; a [`Failure::NotFound`] error when there
    /// are none.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        match self.fetch(key).await? {
            Some((bytes, _)) => Ok(bytes),
            None => Err(StorageError::Store {
                location: self.describe(key),
                failure: Failure::NotFound,
                reason: "not found".into(),
            }),
        }
    }

    /// The bytes stored at `key`, or `None` when nothing is stored there.
    pub async fn get_if_exists(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        Ok(self.fetch(key).await?.map(|(bytes, _)| bytes))
    }

    /// The bytes of `key` (`None` when it does not exist) and the version a
    /// [`Store::swap`] compares with.
    pub async fn get_versioned(&self, key: &str) -> Result<(Option<Bytes>, Version), StorageError> {
        match self.fetch(key).await? {
            None => Ok((None, Version::Absent)),
            // Local writes are renames: a read sees one whole version.
            Some((bytes, _)) if self.local.is_some() => {
                Ok((Some(bytes.clone()), Version::Content(bytes)))
            }
            Some((bytes, Some(e_tag))) => Ok((Some(bytes), Version::ETag(e_tag))),
            Some((_, None)) => Err(self.refused(key, "the store gave no ETag")),
        }
    }

    /// The bytes and the ETag of `key`, or `None`.
    async fn fetch(&self, key: &str) -> Result<Option<(Bytes, Option<String>)>, StorageError> {
        let path = self.path(key)?;
        let found = match self.store.get(&path).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(key, e)),
        };
        let e_tag = found.meta.e_tag.clone();
        let bytes = found.bytes().await.map_err(|e| self.error(key, e))?;
        Ok(Some((bytes, e_tag)))
    }

    /// The size in bytes of the object at `key`; a [`Failure::NotFound`]
    /// error when there is none.
    pub async fn size(&self, key: &str) -> Result<u64, StorageError> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(meta.size),
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// The bytes of each of `ranges` of the object at `key`, in order:
    /// parts of a large file (a Parquet file's footer, then the column
    /// chunks wanted) without the rest (requests close together are
    /// coalesced by the store's client).
    pub async fn get_ranges(
        &self,
        key: &str,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<Bytes>, StorageError> {
        let path = self.path(key)?;
        self.store
            .get_ranges(&path, ranges)
            .await
            .map_err(|e| self.error(key, e))
    }

    /// Stores `bytes` at `key`, replacing what was there. When this
    /// returns, the object is durable (in a local folder: synced).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.put_mode(key, bytes, Mode::Overwrite).await.map(|_| ())
    }

    /// Creates `key` holding `bytes` only if nothing is stored there yet:
    /// `Ok(true)` when this call created it, `Ok(false)` when the key
    /// already existed (another writer's, or this one's own put answered
    /// late). An error leaves it unknown whether the key was created.
    pub async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool, StorageError> {
        self.put_mode(key, bytes, Mode::Create).await
    }

    async fn put_mode(&self, key: &str, bytes: Bytes, mode: Mode) -> Result<bool, StorageError> {
        if let Some(path) = self.local_path(key)? {
            return self
                .on_disk(&path, move |path| folder::write(path, &bytes, mode))
                .await;
        }
        let options = PutOptions {
            mode: match mode {
                Mode::Overwrite => PutMode::Overwrite,
                Mode::Create => PutMode::Create,
            },
            ..PutOptions::default()
        };
        let put = self
            .store
            .put_opts(&self.path(key)?, PutPayload::from(bytes), options)
            .await
            .map_err(|e| self.error(key, e));
        match put {
            Ok(_) => Ok(true),
            Err(e) if mode == Mode::Create && e.is_conflict() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes `bytes` to `key` if it is still at `expected` (a version
    /// [`Store::get_versioned`] or an earlier swap gave): the new version
    /// when it was, `None` when someone else changed it first. An error
    /// leaves it unknown whether the write happened (an answer lost on the
    /// network); the caller's next swap then finds out.
    pub async fn swap(
        &self,
        key: &str,
        expected: &Version,
        bytes: Bytes,
    ) -> Result<Option<Version>, StorageError> {
        if let Some(path) = self.local_path(key)? {
            let expected = expected.clone();
            return self
                .on_disk(&path, move |path| swap_local(path, &expected, bytes))
                .await;
        }
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
        let put = self
            .store
            .put_opts(&self.path(key)?, PutPayload::from(bytes), options)
            .await
            .map_err(|e| self.error(key, e));
        match put {
            Ok(done) => match done.e_tag {
                Some(e_tag) => Ok(Some(Version::ETag(e_tag))),
                None => Err(self.refused(key, "the store gave no ETag")),
            },
            // A create that found the object, an ETag that differs, or an
            // object removed since it was read.
            Err(e) if e.is_conflict() || e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What the folder `dir` holds directly; nothing when it does not exist.
    pub async fn list(&self, dir: &str) -> Result<Listing, StorageError> {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.path(dir)?))
            .await
            .map_err(|e| self.error(dir, e))?;
        let mut files: Vec<String> = listed
            .objects
            .iter()
            .filter_map(|meta| self.key_of(&meta.location))
            .collect();
        let mut folders: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|path| self.key_of(path))
            .collect();
        files.sort();
        folders.sort();
        Ok(Listing { files, folders })
    }

    /// Every object under the folder `dir` (`""`: the whole store), at any
    /// depth, sorted by key.
    pub async fn list_all(&self, dir: &str) -> Result<Vec<Entry>, StorageError> {
        let root = self.path(dir)?;
        let metas: Vec<ObjectMeta> = self
            .store
            .list(Some(&root))
            .try_collect()
            .await
            .map_err(|e| self.error(dir, e))?;
        let mut entries: Vec<Entry> = metas
            .into_iter()
            .filter_map(|meta| {
                Some(Entry {
                    key: self.key_of(&meta.location)?,
                    size: meta.size,
                    e_tag: meta.e_tag,
                    last_modified: meta.last_modified,
                })
            })
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// Removes `key`; removing what is not there is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(self.error(key, e)),
        }
        match self.local_path(key)? {
            Some(path) => {
                self.on_disk(&path, |path| folder::sync_dir(folder::parent(path)?))
                    .await
            }
            None => Ok(()),
        }
    }

    /// The object store underneath and the path of `key` in it, for the
    /// chunked transfers.
    pub(super) fn object(
        &self,
        key: &str,
    ) -> Result<(Arc<dyn ObjectStore>, ObjectPath), StorageError> {
        Ok((self.store.clone(), self.path(key)?))
    }

    /// Runs a local file operation off the I/O threads.
    async fn on_disk<T: Send + 'static>(
        &self,
        path: &Path,
        operation: impl FnOnce(&Path) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        let owned = path.to_owned();
        let done = tokio::task::spawn_blocking(move || operation(&owned)).await;
        match done {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(StorageError::Local {
                path: path.to_owned(),
                source,
            }),
            Err(e) => Err(StorageError::Store {
                location: path.display().to_string(),
                failure: Failure::Other,
                reason: format!("the file operation did not finish: {e}"),
            }),
        }
    }

    fn path(&self, key: &str) -> Result<ObjectPath, StorageError> {
        let key_path = ObjectPath::parse(key)
            .map_err(|e| self.refused(key, &format!("not a valid key: {e}")))?;
        Ok(self.prefix.parts().chain(key_path.parts()).collect())
    }

    /// `location`'s key: its path under the prefix.
    fn key_of(&self, location: &ObjectPath) -> Option<String> {
        let parts: Vec<_> = location.prefix_match(&self.prefix)?.collect();
        let parts: Vec<&str> = parts.iter().map(|part| part.as_ref()).collect();
        Some(parts.join("/"))
    }

    fn error(&self, key: &str, error: object_store::Error) -> StorageError {
        StorageError::store(self.describe(key), error)
    }

    fn refused(&self, key: &str, reason: &str) -> StorageError {
        StorageError::Store {
            location: self.describe(key),
            failure: Failure::Other,
            reason: reason.to_owned(),
        }
    }
}
