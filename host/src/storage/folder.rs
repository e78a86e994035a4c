//! Writes into a local folder that survive a power cut: a file appears
//! whole or not at all, and once a write returns it is on disk. object_store's
//! `LocalFileSystem` renames (or links) a temporary file into place but
//! syncs nothing, so the folder's writes are made here; reads, listings and
//! deletes go through it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How a write treats a file already at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Overwrite,
    /// Only if nothing is there yet.
    Create,
}

/// Writes `bytes` to `path`: to a file beside it first, synced, then moved
/// over `path` (`Overwrite`) or linked to it only if `path` does not exist
/// (`Create`: `Ok(false)` when it did); then the folder is synced. Missing
/// folders are made.
pub(super) fn write(path: &Path, bytes: &[u8], mode: Mode) -> std::io::Result<bool> {
    let dir = parent(path)?;
    std::fs::create_dir_all(dir)?;
    let staged = staged_path(path);
    let written = (|| {
        let mut file = std::fs::File::create(&staged)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        match mode {
            Mode::Overwrite => std::fs::rename(&staged, path).map(|()| true),
            Mode::Create => match std::fs::hard_link(&staged, path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            },
        }
    })();
    // Gone after a rename; after a link (or a failure) it is removed here.
    let _ = std::fs::remove_file(&staged);
    let created = written?;
    sync_dir(dir)?;
    Ok(created)
}

/// Moves the local file `from` to `path`, replacing what was there: synced
/// before the rename (a rename is atomic, not durable) and the folder
/// after, so that a power cut after this returns (and after the caller
/// acts on it, committing Kafka offsets say) leaves the whole file.
pub(super) fn move_into(from: &Path, path: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    let dir = parent(path).map_err(|e| (path.to_owned(), e))?;
    std::fs::create_dir_all(dir).map_err(|e| (dir.to_owned(), e))?;
    std::fs::File::open(from)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(from, path))
        .map_err(|e| (from.to_owned(), e))?;
    sync_dir(dir).map_err(|e| (dir.to_owned(), e))
}

/// Makes a rename or removal in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

pub(super) fn parent(path: &Path) -> std::io::Result<&Path> {
    path.parent()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not inside a folder"))
}

/// A name beside `path` that no listing shows: object_store's own for
/// files being written (`<name>#<digits>`), which `LocalFileSystem` skips.
fn staged_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut staged = path.as_os_str().to_owned();
    staged.push(format!("#{}{n:012}", std::process::id()));
    PathBuf::from(staged)
}
