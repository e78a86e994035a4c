//! The folder being imported: a local folder or Azure storage through
//! `object_store`, used synchronously (the importer is a plain loop).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::ImportError;
use crate::storage::{AzureCredentials, object_path, open_object_store};

/// A file found under the import URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative to the import URL, `/`-separated.
    pub path: String,
    pub size: u64,
}

pub(crate) struct Source {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    runtime: tokio::runtime::Runtime,
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ImportError::Runtime(e.to_string()))?;
        Ok(Source {
            store,
            prefix,
            url: url.trim_end_matches('/').to_owned(),
            runtime,
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
        let mut files = self.runtime.block_on(async {
            let mut listing = self.store.list(root.as_ref());
            let mut files = Vec::new();
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| ImportError::Store {
                    location: self.url.clone(),
                    reason: format!("listing: {e}"),
                })?;
                let full = meta.location.as_ref();
                let path = full.strip_prefix(&strip).unwrap_or(full).to_owned();
                files.push(SourceFile {
                    path,
                    size: meta.size,
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
        self.runtime.block_on(async {
            match self.store.get(&object_path(&self.prefix, key)).await {
                Ok(found) => found.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Replaces `key` whole: readers see the old or the new bytes, never a
    /// mix (a rename locally, one PUT on Azure).
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ImportError> {
        self.runtime
            .block_on(
                self.store
                    .put(&object_path(&self.prefix, key), PutPayload::from(bytes)),
            )
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
