//! The folder being imported: a local folder or Azure storage through
//! `object_store`, used synchronously (the importer is a plain loop) on the
//! host's I/O runtime. A file is read from local disk whatever the source:
//! a local folder's in place, an Azure file downloaded in chunks to a
//! temporary file first, so no file is ever held in memory whole.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;

use super::error::ImportError;
use crate::storage::{AzureCredentials, Storage, open_object_store};

/// A file found under the import URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative to the import URL, `/`-separated.
    pub path: String,
    pub size: u64,
    /// What the store says identifies this content (its ETag, else its
    /// modification time): a file rewritten with the same size differs.
    pub version: Option<String>,
}

#[derive(Clone)]
pub(crate) struct Source {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) prefix: String,
    url: String,
    /// The folder, when it is local: its files are read in place, and the
    /// importer's own files are written under an OS lock (`swap.rs`).
    local: Option<Arc<LocalFileSystem>>,
    /// Downloads of remote files in chunks, and local files' durable
    /// renames.
    pub(super) storage: Arc<Storage>,
}

impl Source {
    pub fn open(url: &str, azure: &AzureCredentials) -> Result<Self, ImportError> {
        // `open_object_store` creates a missing local folder, which suits
        // writers; for an import a mistyped path must be an error instead.
        let local_dir = match url.split_once("://") {
            None => Some(url),
            Some(("file", path)) => Some(path),
            Some(_) => None,
        };
        let store_error = |reason: String| ImportError::Store {
            location: url.to_owned(),
            reason,
        };
        let (store, prefix, local) = match local_dir {
            Some(dir) if !std::path::Path::new(dir).is_dir() => {
                return Err(store_error("no such folder".into()));
            }
            Some(dir) => {
                let folder = Arc::new(
                    LocalFileSystem::new_with_prefix(dir)
                        .map_err(|e| store_error(e.to_string()))?,
                );
                let store: Arc<dyn ObjectStore> = folder.clone();
                (store, String::new(), Some(folder))
            }
            None => {
                let (store, prefix) = open_object_store(url, azure)?;
                (store, prefix, None)
            }
        };
        Ok(Source {
            store,
            prefix,
            url: url.trim_end_matches('/').to_owned(),
            local,
            storage: Arc::new(Storage::open(url, azure)?),
        })
    }

    /// Where `key` is, for messages.
    pub fn describe(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    /// Every file under the URL, sorted by path, without hidden ones: a
    /// path segment starting with `.` or `_` (the importer's own progress
    /// files, Spark's `_SUCCESS` and `.crc` files).
    pub fn list(&self) -> Result<Vec<SourceFile>, ImportError> {
        let root = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix.trim_end_matches('/'))
        };
        let (store, url) = (self.store.clone(), self.url.clone());
        let mut files = crate::io::wait(async move {
            let mut listing = store.list(root.as_ref());
            let mut files = Vec::new();
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| ImportError::Store {
                    location: url.clone(),
                    reason: format!("listing: {e}"),
                })?;
                let full = meta.location.as_ref();
                let path = full.strip_prefix(&strip).unwrap_or(full).to_owned();
                let version = meta
                    .e_tag
                    .clone()
                    .or_else(|| Some(meta.last_modified.to_rfc3339()));
                files.push(SourceFile {
                    path,
                    size: meta.size,
                    version,
                });
            }
            Ok::<_, ImportError>(files)
        })?;
        files.retain(|f| !hidden(&f.path));
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The file `key`, to read from its start: in place in a local folder;
    /// from Azure, a temporary copy downloaded in chunks, which has no name
    /// and is gone when it is closed or the process dies, however it dies.
    pub fn open_file(&self, key: &str) -> Result<File, ImportError> {
        let location = || self.describe(key);
        if let Some(path) = self.local_path(key)? {
            return File::open(&path).map_err(|e| ImportError::Store {
                location: location(),
                reason: if e.kind() == std::io::ErrorKind::NotFound {
                    "removed while importing".into()
                } else {
                    e.to_string()
                },
            });
        }
        let mut copy = tempfile::tempfile().map_err(|e| ImportError::Store {
            location: location(),
            reason: format!("creating a temporary file to download it to: {e}"),
        })?;
        let name = std::env::temp_dir().join("(temporary copy)");
        self.storage.download_into(key, &mut copy, &name)?;
        Ok(copy)
    }

    /// Where `key` is on disk, for a local folder. Keys are as listed
    /// (`object_store` escapes characters such as `[` or `%` in them).
    pub(super) fn local_path(&self, key: &str) -> Result<Option<PathBuf>, ImportError> {
        let Some(folder) = &self.local else {
            return Ok(None);
        };
        let error = |reason: String| ImportError::Store {
            location: self.describe(key),
            reason,
        };
        let location = ObjectPath::parse(key).map_err(|e| error(e.to_string()))?;
        folder
            .path_to_filesystem(&location)
            .map(Some)
            .map_err(|e| error(e.to_string()))
    }
}

fn hidden(path: &str) -> bool {
    path.split('/')
        .any(|segment| segment.starts_with('.') || segment.starts_with('_'))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn hidden_files_and_folders() {
        assert!(hidden("_sluice_import/t.json"));
        assert!(hidden("day=1/_SUCCESS"));
        assert!(hidden("day=1/.part-0.avro.crc"));
        assert!(!hidden("day=1/part-0.avro"));
    }

    #[test]
    fn lists_sorted_without_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.jsonl",
            "a/c.avro",
            "_sluice_import/t.json",
            ".x",
            "a.parquet",
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"12").unwrap();
        }
        let source = Source::open(dir.path().to_str().unwrap(), &Default::default()).unwrap();
        let paths: Vec<String> = source.list().unwrap().into_iter().map(|f| f.path).collect();
        assert_eq!(paths, ["a.parquet", "a/c.avro", "b.jsonl"]);
    }

    #[test]
    fn a_local_file_is_read_in_place() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b[1] 100%.jsonl"), b"12").unwrap();
        let source = Source::open(dir.path().to_str().unwrap(), &Default::default()).unwrap();
        let listed = source.list().unwrap();
        let [file] = listed.as_slice() else {
            panic!("one file: {listed:?}");
        };
        let mut text = String::new();
        source
            .open_file(&file.path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "12");
        // The same file, not a copy: what is appended shows.
        let mut opened = source.open_file(&file.path).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("b[1] 100%.jsonl"))
            .unwrap()
            .write_all(b"3")
            .unwrap();
        text.clear();
        opened.read_to_string(&mut text).unwrap();
        assert_eq!(text, "123");
        let missing = source.open_file("missing").unwrap_err().to_string();
        assert!(missing.contains("removed while importing"), "{missing}");
    }

    #[test]
    fn a_missing_folder_is_an_error_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("typo");
        assert!(Source::open(missing.to_str().unwrap(), &Default::default()).is_err());
        assert!(!missing.exists());
    }
}
