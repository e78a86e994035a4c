//! Where files and objects are kept: a local folder, or Azure Blob Storage
//! / ADLS Gen2 (`az://`, `abfss://`) through `object_store`. One [`Store`]
//! (`store.rs`) does every operation once, async, for the registry; a
//! [`Storage`] is the same store for plain threads (the export, the import,
//! the command line), each call waited for on the host's I/O runtime, plus
//! what only they need: files on local disk moved in or copied out whole,
//! in chunks (`transfer.rs`).
//!
//! Writes never show half a file: a local file is moved into place whole
//! (`folder.rs`), a remote upload is completed only when its source was read
//! to the end. A create-only put ([`Store::put_if_absent`]) creates a key
//! once whoever else tries (a Delta table's log, the registry's manifests);
//! a compare-and-swap ([`Store::swap`], `swap.rs`) writes only over the
//! version last seen (the import's lease and progress file).

mod error;
mod folder;
mod store;
mod swap;
mod target;
mod transfer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStore;

pub use error::{Failure, StorageError};
pub use store::{Entry, Listing, Store};
pub use swap::Version;
pub use target::AzureCredentials;

use crate::io::block_on;
use transfer::UploadError;

/// A [`Store`] for plain threads: each call waits on the I/O runtime.
#[derive(Clone)]
pub struct Storage {
    store: Store,
}

impl Storage {
    /// `file:///dir` or a plain path: a local folder (made when missing).
    /// `az://container/dir`,
    /// `abfss://filesystem@account.dfs.core.windows.net/dir`: Azure.
    pub fn open(url: &str, azure: &AzureCredentials) -> Result<Self, StorageError> {
        Ok(Storage {
            store: Store::open(url, azure)?,
        })
    }

    /// As [`Storage::open`], but a missing local folder is an error (see
    /// [`Store::open_existing`]).
    pub fn open_existing(url: &str, azure: &AzureCredentials) -> Result<Self, StorageError> {
        Ok(Storage {
            store: Store::open_existing(url, azure)?,
        })
    }

    /// Storage on an object store the caller built (another backend, or
    /// one that injects latency or faults in a test); `url` only names it
    /// in messages.
    pub fn on_object_store(url: &str, store: Arc<dyn ObjectStore>) -> Self {
        Storage {
            store: Store::on_object_store(url, store),
        }
    }

    /// The async store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn url(&self) -> &str {
        self.store.url()
    }

    /// Whether files wait on a disk of their own before `upload` (a remote
    /// store), rather than inside the folder they end up in.
    pub fn stages_elsewhere(&self) -> bool {
        self.store.local_root().is_none()
    }

    /// Where a local file waits before `upload`: inside the folder itself
    /// for local storage (the upload is then a rename on one file system), a
    /// temporary folder otherwise.
    pub fn staging_dir(&self, run_id: &str) -> PathBuf {
        match self.store.local_root() {
            Some(root) => root.join(".staging").join(run_id),
            None => std::env::temp_dir().join("sluice-staging").join(run_id),
        }
    }

    /// Moves `local` to `key`, replacing what was there, and removes `local`.
    /// When this returns, the file is durable: on a local folder the file
    /// and its folder are synced to disk, on Azure the blob is committed.
    pub fn upload(&self, local: &Path, key: &str) -> Result<(), StorageError> {
        let local_error = |source| StorageError::Local {
            path: local.to_owned(),
            source,
        };
        if let Some(path) = self.store.local_path(key)? {
            return folder::move_into(local, &path)
                .map_err(|(path, source)| StorageError::Local { path, source });
        }
        let file = std::fs::File::open(local).map_err(local_error)?;
        transfer::upload_from(&self.store, file, key).map_err(|e| match e {
            UploadError::Read(source) => local_error(source),
            UploadError::Store(e) => e,
        })?;
        std::fs::remove_file(local).map_err(local_error)
    }

    /// See [`Store::get`].
    pub fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        block_on(self.store.get(key))
    }

    /// See [`Store::get_if_exists`].
    pub fn get_if_exists(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        block_on(self.store.get_if_exists(key))
    }

    /// See [`Store::get_versioned`].
    pub fn get_versioned(&self, key: &str) -> Result<(Option<Bytes>, Version), StorageError> {
        block_on(self.store.get_versioned(key))
    }

    /// See [`Store::put`].
    pub fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        block_on(self.store.put(key, bytes))
    }

    /// See [`Store::put_if_absent`].
    pub fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool, StorageError> {
        block_on(self.store.put_if_absent(key, bytes))
    }

    /// See [`Store::swap`].
    pub fn swap(
        &self,
        key: &str,
        expected: &Version,
        bytes: Bytes,
    ) -> Result<Option<Version>, StorageError> {
        block_on(self.store.swap(key, expected, bytes))
    }

    /// The keys directly inside the folder `dir`, sorted; none when the
    /// folder does not exist.
    pub fn list(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        Ok(block_on(self.store.list(dir))?.files)
    }

    /// See [`Store::list_all`].
    pub fn list_all(&self, dir: &str) -> Result<Vec<Entry>, StorageError> {
        block_on(self.store.list_all(dir))
    }

    /// See [`Store::delete`].
    pub fn delete(&self, key: &str) -> Result<(), StorageError> {
        block_on(self.store.delete(key))
    }

    /// Copies `key` to the local file `to`, in chunks, so a large object
    /// never sits in memory whole.
    pub fn download(&self, key: &str, to: &Path) -> Result<(), StorageError> {
        let local_error = |source| StorageError::Local {
            path: to.to_owned(),
            source,
        };
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(local_error)?;
        }
        if let Some(from) = self.store.local_path(key)? {
            return std::fs::copy(&from, to)
                .map(|_| ())
                .map_err(|source| StorageError::Local { path: from, source });
        }
        let mut file = std::fs::File::create(to).map_err(local_error)?;
        self.download_into(key, &mut file, to)
    }

    /// Writes the bytes of `key` to `out` (named `out_name` in errors) as
    /// they arrive, a few network chunks in memory at a time: for a file
    /// that may be larger than memory, such as an import's temporary copy.
    pub fn download_into(
        &self,
        key: &str,
        out: &mut std::fs::File,
        out_name: &Path,
    ) -> Result<(), StorageError> {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(out);
        let local_error = |source| StorageError::Local {
            path: out_name.to_owned(),
            source,
        };
        match self.store.local_path(key)? {
            Some(path) => {
                let mut from = std::fs::File::open(&path)
                    .map_err(|source| StorageError::Local { path, source })?;
                std::io::copy(&mut from, &mut out).map_err(local_error)?;
            }
            None => transfer::download_into(&self.store, key, &mut out, out_name)?,
        }
        out.flush().map_err(local_error)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::transfer::{UPLOAD_CHUNK, upload_from};
    use super::*;

    #[test]
    fn a_local_folder_lists_uploads_and_deletes() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path().to_str().unwrap(), &Default::default()).unwrap();
        assert_eq!(storage.list("a/b").unwrap(), Vec::<String>::new());
        let staging = storage.staging_dir("r");
        std::fs::create_dir_all(&staging).unwrap();
        for name in ["y.txt", "x.txt"] {
            let local = staging.join(name);
            std::fs::write(&local, name).unwrap();
            storage.upload(&local, &format!("a/b/{name}")).unwrap();
            assert!(!local.exists(), "moved, not copied");
        }
        assert_eq!(storage.list("a/b").unwrap(), ["a/b/x.txt", "a/b/y.txt"]);
        assert_eq!(storage.get("a/b/x.txt").unwrap(), Bytes::from("x.txt"));
        storage.delete("a/b/x.txt").unwrap();
        storage.delete("a/b/x.txt").unwrap();
        assert_eq!(storage.list("a/b").unwrap(), ["a/b/y.txt"]);
    }

    /// Reads `good` bytes of a file, then fails as a dying disk would.
    struct FailingRead {
        good: usize,
    }

    impl Read for FailingRead {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.good == 0 {
                return Err(std::io::Error::other("injected: the disk failed mid-file"));
            }
            let n = buf.len().min(self.good);
            buf[..n].fill(b'x');
            self.good -= n;
            Ok(n)
        }
    }

    #[test]
    fn an_upload_that_cannot_read_its_whole_file_stores_nothing() {
        let store = Arc::new(object_store::memory::InMemory::new());
        let storage = Storage::on_object_store("memory://test", store.clone());
        // Past one part (a multipart upload has begun) and inside one.
        for good in [UPLOAD_CHUNK + UPLOAD_CHUNK / 2, 1000] {
            let key = format!("t/p/{good}.parquet");
            let error = match upload_from(storage.store(), FailingRead { good }, &key) {
                Err(UploadError::Read(error)) => error.to_string(),
                Err(UploadError::Store(error)) => panic!("not the read error: {error}"),
                Ok(()) => panic!("a failed read was reported as stored"),
            };
            assert!(error.contains("injected"), "{error}");
            assert!(
                matches!(storage.get_if_exists(&key), Ok(None)),
                "a truncated object was completed under {key}"
            );
        }
        // A whole read is stored whole.
        upload_from(storage.store(), &b"all of it"[..], "t/p/whole.parquet")
            .map_err(|_| "upload failed")
            .unwrap();
        assert_eq!(
            storage.get("t/p/whole.parquet").unwrap(),
            Bytes::from("all of it")
        );
    }

    #[test]
    fn a_create_only_put_creates_once_and_never_overwrites() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path().to_str().unwrap(), &Default::default()).unwrap();
        let key = "t/_delta_log/00000000000000000000.json";
        assert_eq!(storage.get_if_exists(key).unwrap(), None);
        assert!(storage.put_if_absent(key, Bytes::from("first")).unwrap());
        assert!(!storage.put_if_absent(key, Bytes::from("second")).unwrap());
        assert_eq!(
            storage.get_if_exists(key).unwrap(),
            Some(Bytes::from("first"))
        );
        assert_eq!(
            storage.list("t/_delta_log").unwrap(),
            [key],
            "no temporary file left beside it"
        );
        let copy = root.path().join("copy");
        storage.download(key, &copy).unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), b"first");
    }

    /// A store that does not answer is a transient failure, not "not found"
    /// nor a conflict: callers retry it, never act on it.
    #[test]
    fn a_store_that_does_not_answer_fails_transiently() {
        // Nothing listens on a port just freed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = object_store::azure::MicrosoftAzureBuilder::new()
            .with_account("devstoreaccount1")
            .with_access_key("a2V5")
            .with_container_name("none")
            .with_endpoint(format!("http://127.0.0.1:{port}/{}", "devstoreaccount1"))
            .with_allow_http(true)
            .with_retry(object_store::RetryConfig {
                max_retries: 0,
                ..Default::default()
            })
            .build()
            .unwrap();
        let storage = Storage::on_object_store("azure://nowhere", Arc::new(store));
        let errors = [
            storage.get("a.json").unwrap_err(),
            storage
                .put_if_absent("a.json", Bytes::from("x"))
                .unwrap_err(),
            storage
                .swap("a.json", &Version::Absent, Bytes::from("x"))
                .unwrap_err(),
            storage.list("a").unwrap_err(),
            storage.delete("a.json").unwrap_err(),
        ];
        for error in errors {
            assert!(error.is_transient(), "{:?}: {error}", error.failure());
        }
    }
}
