//! Compare-and-swap of a small object: a write that happens only if the
//! object is still as the caller last saw it, so that of two writers acting
//! on the same version exactly one succeeds and the other learns it lost
//! (the import's lease and progress file are written so).
//!
//! On Azure this is the store's own condition: a create-only put
//! (`If-None-Match: *`) or a put on the ETag last seen (`If-Match`). A
//! local folder has no ETags that can be trusted for this (object_store's
//! `LocalFileSystem` refuses `PutMode::Update`, and its ETag of inode,
//! size and modification time can repeat when a freed inode is reused
//! within the clock's resolution), so there the comparison is of the bytes
//! themselves, made under an OS lock (`flock`) held around the whole
//! read-compare-write-rename: no other process on the machine can write
//! between the read and the rename.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;

use super::folder::{self, Mode};

/// An empty file in each folder holding swapped objects, locked around each
/// local compare-and-swap. It is never removed: a process that opened it
/// before a removal would lock a file nobody else can see.
const GUARD: &str = ".swap-guard";

/// An object as its caller last read or wrote it: what a swap compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// There was no such object.
    Absent,
    /// Its ETag, from a remote store.
    ETag(String),
    /// Its bytes, in a local folder.
    Content(Bytes),
}

/// Writes `bytes` to the local file `path` if it is still at `expected`:
/// the new version when it was, `None` when someone else changed it first.
pub(super) fn swap_local(
    path: &Path,
    expected: &Version,
    bytes: Bytes,
) -> std::io::Result<Option<Version>> {
    let dir = folder::parent(path)?;
    std::fs::create_dir_all(dir)?;
    let guard = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(GUARD))
        .map_err(|e| std::io::Error::new(e.kind(), format!("opening {GUARD}: {e}")))?;
    // Released when `guard` is closed, on return or when the process dies.
    guard
        .lock()
        .map_err(|e| std::io::Error::new(e.kind(), format!("locking {GUARD}: {e}")))?;
    let current = match std::fs::read(path) {
        Ok(bytes) => Version::Content(Bytes::from(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Version::Absent,
        Err(e) => return Err(e),
    };
    if current != *expected {
        return Ok(None);
    }
    // A reader sees the old or the new bytes, and a power cut keeps one.
    folder::write(path, &bytes, Mode::Overwrite)?;
    drop(guard);
    Ok(Some(Version::Content(bytes)))
}
