//! Where finished files go: a local folder, or Azure Blob Storage / ADLS
//! Gen2 (`az://`, `abfss://`) through `object_store`. Files are written
//! locally first and moved into place whole, so a half-written file never
//! appears and a failed upload leaves the previous version in place. A
//! create-only put (`put_new`) is what a Delta table's log is written with:
//! of two writers putting the same key, exactly one creates it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage URL `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("{}: {source}", path.display())]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{location}: {reason}")]
    Remote { location: String, reason: String },
}

/// Azure credentials: the account name and key of the connections.json
/// file, and an endpoint for the Azurite emulator or a sovereign cloud.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureCredentials {
    pub account: Option<String>,
    pub key: Option<String>,
    /// E.g. `http://127.0.0.1:10000/devstoreaccount1` for Azurite.
    pub endpoint: Option<String>,
}

pub struct Storage {
    url: String,
    target: Target,
}

enum Target {
    Local(PathBuf),
    Remote {
        store: Arc<dyn ObjectStore>,
        prefix: String,
    },
}

/// Uploads stream in parts of this size: memory stays bounded.
const UPLOAD_CHUNK: usize = 8 << 20;

/// What the reading side of an upload hands to the uploading task: a
/// chunk, or word that the source was read to its end. A channel closed
/// without `End` means the reading failed, and the upload is aborted.
enum Piece {
    Chunk(Vec<u8>),
    End,
}

/// Why [`Storage::upload_from`] failed: reading the source, or storing.
enum UploadError {
    Read(std::io::Error),
    Store(StorageError),
}

/// Fills `buf` as far as the source allows: short only at its end.
fn read_full(source: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Storage {
    /// `file:///dir` or a plain path: a local folder. `az://container/dir`,
    /// `abfss://filesystem@account.dfs.core.windows.net/dir`: Azure.
    pub fn open(url: &str, azure: &AzureCredentials) -> Result<Self, StorageError> {
        let scheme = url.split_once("://").map(|(s, _)| s);
        let target = match scheme {
            None => Target::Local(PathBuf::from(url)),
            Some("file") => Target::Local(PathBuf::from(&url["file://".len()..])),
            Some("az" | "abfs" | "abfss" | "azure" | "adl") => {
                let (store, prefix) = azure_store(url, azure)?;
                Target::Remote { store, prefix }
            }
            Some(other) => {
                return Err(StorageError::Url {
                    url: url.to_owned(),
                    reason: format!(
                        "unsupported scheme `{other}` (use file://, az:// or abfss://)"
                    ),
                });
            }
        };
        Ok(Storage {
            url: url.to_owned(),
            target,
        })
    }

    /// Storage on an object store the caller built (another backend, or
    /// one that injects latency or faults in a test); `url` only names it
    /// in messages.
    pub fn on_object_store(url: &str, store: Arc<dyn ObjectStore>) -> Self {
        Storage {
            url: url.to_owned(),
            target: Target::Remote {
                store,
                prefix: String::new(),
            },
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether files wait on a disk of their own before `upload` (a remote
    /// store), rather than inside the folder they end up in.
    pub fn stages_elsewhere(&self) -> bool {
        matches!(self.target, Target::Remote { .. })
    }

    /// Where a local file waits before `upload`: inside the folder itself
    /// for local storage (the upload is then a rename on one file system), a
    /// temporary folder otherwise.
    pub fn staging_dir(&self, run_id: &str) -> PathBuf {
        match &self.target {
            Target::Local(root) => root.join(".staging").join(run_id),
            Target::Remote { .. } => std::env::temp_dir().join("sluice-staging").join(run_id),
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
        match &self.target {
            Target::Local(root) => {
                let path = root.join(key);
                let dir = path.parent().unwrap_or(root);
                std::fs::create_dir_all(dir).map_err(|source| StorageError::Local {
                    path: dir.to_owned(),
                    source,
                })?;
                // Without these syncs a power cut after the rename (and after
                // the caller commits Kafka offsets) can leave an empty or
                // missing file: rename is atomic, not durable.
                std::fs::File::open(local)
                    .and_then(|f| f.sync_all())
                    .map_err(local_error)?;
                std::fs::rename(local, &path).map_err(local_error)?;
                sync_dir(dir)
            }
            Target::Remote { .. } => {
                let file = std::fs::File::open(local).map_err(local_error)?;
                self.upload_from(file, key).map_err(|e| match e {
                    UploadError::Read(source) => local_error(source),
                    UploadError::Store(e) => e,
                })?;
                std::fs::remove_file(local).map_err(local_error)
            }
        }
    }

    /// Streams what `source` reads to `key` on the object store, in
    /// chunks, so at most two are in memory. The upload is completed only
    /// when `source` was read to its end: a read error (a disk failing
    /// under the staging file) aborts it, so no truncated object ever
    /// appears under the key, where the next run would take its range for
    /// stored.
    fn upload_from(&self, mut source: impl Read, key: &str) -> Result<(), UploadError> {
        let Target::Remote { store, prefix } = &self.target else {
            return Err(UploadError::Store(StorageError::Remote {
                location: format!("{}/{key}", self.url),
                reason: "not an object store".into(),
            }));
        };
        let location = object_path(prefix, key);
        let store = store.clone();
        let remote_error = |reason: String| StorageError::Remote {
            location: format!("{}/{key}", self.url),
            reason,
        };
        let (sender, mut pieces) = tokio::sync::mpsc::channel::<Piece>(1);
        let upload = crate::io::handle().spawn(async move {
            let mut writer = BufWriter::with_capacity(store, location, UPLOAD_CHUNK);
            loop {
                match pieces.recv().await {
                    Some(Piece::Chunk(chunk)) => {
                        if let Err(error) = writer.write_all(&chunk).await {
                            let _ = writer.abort().await;
                            return Err(error.to_string());
                        }
                    }
                    Some(Piece::End) => return writer.shutdown().await.map_err(|e| e.to_string()),
                    // The reader stopped before the end: never complete.
                    None => {
                        let _ = writer.abort().await;
                        return Err("aborted: the local file could not be read to its end".into());
                    }
                }
            }
        });
        // Read here and hand chunks over, so the file is read on this
        // thread and at most two chunks are in memory.
        let read = loop {
            let mut chunk = vec![0u8; UPLOAD_CHUNK];
            match read_full(&mut source, &mut chunk) {
                Ok(0) => break Ok(Piece::End),
                Ok(n) => {
                    chunk.truncate(n);
                    if sender.blocking_send(Piece::Chunk(chunk)).is_err() {
                        break Ok(Piece::End); // the upload failed; its error is reported below
                    }
                }
                Err(error) => break Err(error),
            }
        };
        let read = match read {
            Ok(end) => {
                let _ = sender.blocking_send(end);
                Ok(())
            }
            Err(error) => Err(error),
        };
        drop(sender);
        let outcome = crate::io::wait(upload);
        read.map_err(UploadError::Read)?;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(UploadError::Store(remote_error(reason))),
            Err(e) => Err(UploadError::Store(remote_error(format!(
                "upload task failed: {e}"
            )))),
        }
    }

    /// The bytes stored at `key`.
    pub fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        match &self.target {
            Target::Local(root) => {
                let path = root.join(key);
                std::fs::read(&path)
                    .map(Bytes::from)
                    .map_err(|source| StorageError::Local { path, source })
            }
            Target::Remote { store, prefix } => {
                let store = store.clone();
                let path = object_path(prefix, key);
                crate::io::wait(async move { store.get(&path).await?.bytes().await })
                    .map_err(|e| self.remote_error(key, e))
            }
        }
    }

    /// The keys directly inside the folder `dir` (a key prefix ending
    /// without `/`), sorted; none when the folder does not exist.
    pub fn list(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let mut keys = match &self.target {
            Target::Local(root) => {
                let path = root.join(dir);
                let entries = match std::fs::read_dir(&path) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(source) => return Err(StorageError::Local { path, source }),
                };
                let mut keys = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|source| StorageError::Local {
                        path: path.clone(),
                        source,
                    })?;
                    let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
                    if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
                        keys.push(format!("{dir}/{name}"));
                    }
                }
                keys
            }
            Target::Remote { store, prefix } => {
                let store = store.clone();
                let folder = object_path(prefix, dir);
                let listed = crate::io::wait(async move {
                    store
                        .list_with_delimiter(Some(&folder))
                        .await
                        .map(|l| l.objects)
                })
                .map_err(|e| self.remote_error(dir, e))?;
                listed
                    .iter()
                    .filter_map(|meta| meta.location.filename())
                    .map(|name| format!("{dir}/{name}"))
                    .collect()
            }
        };
        keys.sort();
        Ok(keys)
    }

    /// Removes `key`; removing what is not there is not an error.
    pub fn delete(&self, key: &str) -> Result<(), StorageError> {
        match &self.target {
            Target::Local(root) => {
                let path = root.join(key);
                match std::fs::remove_file(&path) {
                    Ok(()) => path.parent().map_or(Ok(()), sync_dir),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(source) => Err(StorageError::Local { path, source }),
                }
            }
            Target::Remote { store, prefix } => {
                let store = store.clone();
                let path = object_path(prefix, key);
                match crate::io::wait(async move { store.delete(&path).await }) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.remote_error(key, e)),
                }
            }
        }
    }

    /// Creates `key` holding `bytes` only if nothing is stored there yet:
    /// `Ok(true)` when this call created it, `Ok(false)` when the key
    /// already existed (another writer's, or this one's own put answered
    /// late). An error leaves it unknown whether the key was created. When
    /// this returns `Ok(true)` the object is durable (synced locally).
    pub fn put_new(&self, key: &str, bytes: Bytes) -> Result<bool, StorageError> {
        let (store, location) = match &self.target {
            Target::Local(root) => {
                // LocalFileSystem makes the put create-only with a hard link
                // from a temporary file, which fails if the key exists.
                std::fs::create_dir_all(root).map_err(|source| StorageError::Local {
                    path: root.clone(),
                    source,
                })?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(root)
                    .map_err(|e| self.remote_error(key, e))?;
                let store: Arc<dyn ObjectStore> = Arc::new(store);
                (store, ObjectPath::from(key))
            }
            Target::Remote { store, prefix } => (store.clone(), object_path(prefix, key)),
        };
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let put = async move {
            store
                .put_opts(&location, PutPayload::from(bytes), options)
                .await
        };
        match crate::io::wait(put) {
            Ok(_) => {}
            // Azure answers 409 (exists) or 412 (the If-None-Match failed).
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                return Ok(false);
            }
            Err(e) => return Err(self.remote_error(key, e)),
        }
        if let Target::Local(root) = &self.target {
            // The put renames nothing durable by itself: sync the file and
            // its folder, as `upload` does, before anyone acts on it.
            let path = root.join(key);
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|source| StorageError::Local {
                    path: path.clone(),
                    source,
                })?;
            sync_dir(path.parent().unwrap_or(root))?;
        }
        Ok(true)
    }

    /// The bytes stored at `key`, or `None` when nothing is stored there.
    pub fn get_if_exists(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        match &self.target {
            Target::Local(root) => {
                let path = root.join(key);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StorageError::Local { path, source }),
                }
            }
            Target::Remote { store, prefix } => {
                let store = store.clone();
                let path = object_path(prefix, key);
                match crate::io::wait(async move { store.get(&path).await?.bytes().await }) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(self.remote_error(key, e)),
                }
            }
        }
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
        match &self.target {
            Target::Local(root) => {
                let from = root.join(key);
                std::fs::copy(&from, to)
                    .map(|_| ())
                    .map_err(|source| StorageError::Local { path: from, source })
            }
            Target::Remote { .. } => {
                let mut file = std::fs::File::create(to).map_err(local_error)?;
                self.download_into(key, &mut file, to)
            }
        }
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
        match &self.target {
            Target::Local(root) => {
                let path = root.join(key);
                let mut from = std::fs::File::open(&path)
                    .map_err(|source| StorageError::Local { path, source })?;
                std::io::copy(&mut from, &mut out).map_err(local_error)?;
            }
            Target::Remote { store, prefix } => {
                use futures_util::StreamExt;
                let (sender, mut chunks) = tokio::sync::mpsc::channel::<Bytes>(2);
                let store = store.clone();
                let path = object_path(prefix, key);
                let fetch = crate::io::handle().spawn(async move {
                    let mut stream = store.get(&path).await?.into_stream();
                    while let Some(chunk) = stream.next().await {
                        if sender.send(chunk?).await.is_err() {
                            break; // the writer below failed; its error is reported
                        }
                    }
                    Ok::<_, object_store::Error>(())
                });
                while let Some(chunk) = chunks.blocking_recv() {
                    out.write_all(&chunk).map_err(local_error)?;
                }
                match crate::io::wait(fetch) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(self.remote_error(key, e)),
                    Err(e) => {
                        return Err(StorageError::Remote {
                            location: format!("{}/{key}", self.url),
                            reason: format!("download task failed: {e}"),
                        });
                    }
                }
            }
        }
        out.flush().map_err(local_error)
    }

    fn remote_error(&self, key: &str, error: object_store::Error) -> StorageError {
        StorageError::Remote {
            location: format!("{}/{key}", self.url),
            reason: error.to_string(),
        }
    }
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StorageError::Local {
            path: dir.to_owned(),
            source,
        })
}

/// An object store for `url` (a local folder, created if missing, or Azure)
/// and the key prefix inside it; for callers that need conditional puts and
/// listings, which a plain folder copy cannot give.
pub fn open_object_store(
    url: &str,
    azure: &AzureCredentials,
) -> Result<(Arc<dyn ObjectStore>, String), StorageError> {
    let local = match url.split_once("://") {
        None => Some(url),
        Some(("file", path)) => Some(path),
        Some(_) => None,
    };
    let Some(dir) = local else {
        return azure_store(url, azure);
    };
    std::fs::create_dir_all(dir).map_err(|source| StorageError::Local {
        path: PathBuf::from(dir),
        source,
    })?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| {
        StorageError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        }
    })?;
    Ok((Arc::new(store), String::new()))
}

fn azure_store(
    url: &str,
    azure: &AzureCredentials,
) -> Result<(Arc<dyn ObjectStore>, String), StorageError> {
    let url_error = |reason: String| StorageError::Url {
        url: url.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| url_error(e.to_string()))?;
    let mut builder = MicrosoftAzureBuilder::new().with_url(url);
    if let Some(account) = &azure.account {
        builder = builder.with_account(account);
    }
    if let Some(key) = &azure.key {
        builder = builder.with_access_key(key);
    }
    if let Some(endpoint) = &azure.endpoint {
        builder = builder
            .with_endpoint(endpoint.clone())
            .with_allow_http(endpoint.starts_with("http://"));
    }
    let store = builder.build().map_err(|e| url_error(e.to_string()))?;
    Ok((Arc::new(store), parsed.path().trim_matches('/').to_owned()))
}

pub(crate) fn object_path(prefix: &str, key: &str) -> ObjectPath {
    if prefix.is_empty() {
        ObjectPath::from(key)
    } else {
        ObjectPath::from(format!("{prefix}/{key}"))
    }
}

#[cfg(test)]
mod tests {
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
            let error = match storage.upload_from(FailingRead { good }, &key) {
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
        storage
            .upload_from(&b"all of it"[..], "t/p/whole.parquet")
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
        assert!(storage.put_new(key, Bytes::from("first")).unwrap());
        assert!(!storage.put_new(key, Bytes::from("second")).unwrap());
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
}
