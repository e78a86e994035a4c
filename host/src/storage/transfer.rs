//! Files too large for memory between local disk and a remote store, in
//! chunks: a plain thread reads (or writes) the file while a task on the
//! I/O runtime talks to the store, a channel of a chunk or two between them.

use std::io::{Read, Write};
use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

use super::error::{Failure, StorageError};
use super::store::Store;

/// Uploads stream in parts of this size: memory stays bounded.
pub(super) const UPLOAD_CHUNK: usize = 8 << 20;

/// What the reading side of an upload hands to the uploading task: a
/// chunk, or word that the source was read to its end. A channel closed
/// without `End` means the reading failed, and the upload is aborted.
enum Piece {
    Chunk(Vec<u8>),
    End,
}

/// Why [`upload_from`] failed: reading the source, or storing.
pub(super) enum UploadError {
    Read(std::io::Error),
    Store(StorageError),
}

/// Streams what `source` reads to `key`, in chunks, so at most two are in
/// memory. The upload is completed only when `source` was read to its
/// end: a read error (a disk failing under the staging file) aborts it, so
/// no truncated object ever appears under the key, where the next run
/// would take its range for stored.
pub(super) fn upload_from(
    store: &Store,
    mut source: impl Read,
    key: &str,
) -> Result<(), UploadError> {
    let (object_store, location) = store.object(key).map_err(UploadError::Store)?;
    let (sender, mut pieces) = tokio::sync::mpsc::channel::<Piece>(1);
    let upload = crate::io::handle().spawn(async move {
        let mut writer = BufWriter::with_capacity(object_store, location, UPLOAD_CHUNK);
        loop {
            match pieces.recv().await {
                Some(Piece::Chunk(chunk)) => {
                    if let Err(error) = writer.write_all(&chunk).await {
                        let _ = writer.abort().await;
                        return Err(error);
                    }
                }
                Some(Piece::End) => return writer.shutdown().await,
                // The reader stopped before the end: never complete.
                None => {
                    let _ = writer.abort().await;
                    return Err(std::io::Error::other(
                        "aborted: the local file could not be read to its end",
                    ));
                }
            }
        }
    });
    // Read here and hand chunks over, so the file is read on this thread
    // and at most two chunks are in memory.
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
        Ok(Err(error)) => Err(UploadError::Store(StorageError::store_io(
            store.describe(key),
            error,
        ))),
        Err(e) => Err(UploadError::Store(StorageError::Store {
            location: store.describe(key),
            failure: Failure::Transient,
            reason: format!("upload task failed: {e}"),
        })),
    }
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

/// Writes the bytes of `key` to `out` (named `out_name` in errors) as they
/// arrive, a few network chunks in memory at a time.
pub(super) fn download_into(
    store: &Store,
    key: &str,
    out: &mut impl Write,
    out_name: &Path,
) -> Result<(), StorageError> {
    let local_error = |source| StorageError::Local {
        path: out_name.to_owned(),
        source,
    };
    let (object_store, location) = store.object(key)?;
    let (sender, mut chunks) = tokio::sync::mpsc::channel::<Bytes>(2);
    let fetch = crate::io::handle().spawn(async move {
        let mut stream = object_store.get(&location).await?.into_stream();
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
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(StorageError::store(store.describe(key), e)),
        Err(e) => Err(StorageError::Store {
            location: store.describe(key),
            failure: Failure::Transient,
            reason: format!("download task failed: {e}"),
        }),
    }
}
