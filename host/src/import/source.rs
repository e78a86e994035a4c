//! The folder being imported: a local folder or Azure storage through
//! `object_store`, used synchronously (the importer is a plain loop) on the
//! host's I/O runtime.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::error::ImportError;
use crate::storage::{AzureCredentials, object_path, open_object_store};

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

pub(crate) struct Source {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
}

impl Source {
    pub fn open(url: &str, azure: &AzureCredentials) -> Result<Self, ImportError> {
        // `open_object_store` creates a missing local folder, which suits
        // writers; for an import a mistyped path must be an error instead.
        let local = match url.split_once("://") {
            None => Some(url),
            Some(("file", path)) => Some(path),
            Some(_) => None,
        };
        if let Some(dir) = local
            && !std::path::Path::new(dir).is_dir()
        {
            return Err(ImportError::Store {
                location: url.to_owned(),
                reason: "no such folder".into(),
            });
        }
        let (store, prefix) = open_object_store(url, azure)?;
        Ok(Source {
            store,
            prefix,
            url: url.trim_end_matches('/').to_owned(),
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

    /// The bytes of `key`; `None` when there is no such object.
    pub fn get(&self, key: &str) -> Result<Option<Bytes>, object_store::Error> {
        let (store, path) = (self.store.clone(), object_path(&self.prefix, key));
        crate::io::wait(async move {
            match store.get(&path).await {
                Ok(found) => found.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Writes `key` only when nothing is there; false when something is.
    pub fn create(&self, key: &str, bytes: Vec<u8>) -> Result<bool, ImportError> {
        let (store, path) = (self.store.clone(), object_path(&self.prefix, key));
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match crate::io::wait(async move {
            store
                .put_opts(&path, PutPayload::from(bytes), options)
                .await
        }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(ImportError::Store {
                location: self.describe(key),
                reason: e.to_string(),
            }),
        }
    }

    pub fn delete(&self, key: &str) -> Result<(), ImportError> {
        let (store, path) = (self.store.clone(), object_path(&self.prefix, key));
        match crate::io::wait(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(ImportError::Store {
                location: self.describe(key),
                reason: e.to_string(),
            }),
        }
    }

    /// Replaces `key` whole: readers see the old or the new bytes, never a
    /// mix (a rename locally, one PUT on Azure).
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ImportError> {
        let (store, path) = (self.store.clone(), object_path(&self.prefix, key));
        crate::io::wait(async move { store.put(&path, PutPayload::from(bytes)).await })
            .map(|_| ())
            .map_err(|e| ImportError::Store {
                location: self.describe(key),
                reason: e.to_string(),
            })
    }
}

fn hidden(path: &str) -> bool {
    path.split('/')
        .any(|segment| segment.starts_with('.') || segment.starts_with('_'))
}

#[cfg(test)]
mod tests {
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
        assert_eq!(
            source.get("b.jsonl").unwrap().unwrap(),
            Bytes::from_static(b"12")
        );
        assert_eq!(source.get("missing").unwrap(), None);
    }

    #[test]
    fn a_missing_folder_is_an_error_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("typo");
        assert!(Source::open(missing.to_str().unwrap(), &Default::default()).is_err());
        assert!(!missing.exists());
    }
}
