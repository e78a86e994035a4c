//! The folder being imported: a local folder or Azure storage, through the
//! host's [`Storage`], used synchronously (the importer is a plain loop). A
//! file is read from local disk whatever the source: a local folder's in
//! place, an Azure file downloaded in chunks to a temporary file first, so
//! no file is ever held in memory whole.

use std::fs::File;

use super::error::ImportError;
use crate::storage::{AzureCredentials, Storage};

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
    /// The folder; also where the importer's own files (the lease and the
    /// progress file) are swapped.
    pub(super) storage: Storage,
}

impl Source {
    /// A local folder must exist: for an import a mistyped path is an
    /// error, not an empty folder.
    pub fn open(url: &str, azure: &AzureCredentials) -> Result<Self, ImportError> {
        Ok(Source {
            storage: Storage::open_existing(url, azure)?,
        })
    }

    /// Where `key` is, for messages.
    pub fn describe(&self, key: &str) -> String {
        self.storage.store().describe(key)
    }

    /// Every file under the URL, sorted by path, without hidden ones: a
    /// path segment starting with `.` or `_` (the importer's own progress
    /// files, Spark's `_SUCCESS` and `.crc` files).
    pub fn list(&self) -> Result<Vec<SourceFile>, ImportError> {
        Ok(self
            .storage
            .list_all("")?
            .into_iter()
            .filter(|entry| !hidden(&entry.key))
            .map(|entry| SourceFile {
                version: entry
                    .e_tag
                    .or_else(|| Some(entry.last_modified.to_rfc3339())),
                path: entry.key,
                size: entry.size,
            })
            .collect())
    }

    /// The file `key`, to read from its start: in place in a local folder;
    /// from Azure, a temporary copy downloaded in chunks, which has no name
    /// and is gone when it is closed or the process dies, however it dies.
    pub fn open_file(&self, key: &str) -> Result<File, ImportError> {
        let location = || self.describe(key);
        if let Some(path) = self.storage.store().local_path(key)? {
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
