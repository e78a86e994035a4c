//! Stores finished files, several at once. At the end of a run every
//! partition's open file is finished together, and an upload to Azure is
//! mostly a wait on the network: one after another, a topic of 64
//! partitions would wait 64 round trips in a row before it commits.
//!
//! Each file is still stored in the order that keeps the export
//! exactly-once: its dead letters, then its data file (whose presence says
//! the range is exported). Files are independent of each other, so any of
//! them may be in place when a run stops; the next run goes on after what
//! is stored.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::error::ExportError;
use super::layout;
use super::written::WrittenFile;
use crate::storage::Storage;

/// Files a topic stores at once, unless a run says otherwise.
pub const DEFAULT_UPLOAD_CONCURRENCY: usize = 8;

/// A finished file to store.
pub struct ToStore<'a> {
    pub file: &'a WrittenFile,
    /// Whether an earlier export of the same range left dead letters: this
    /// file replaces them, so when it has none they are deleted.
    pub had_dead_letters: bool,
}

/// Stores every file, up to `concurrency` at a time. After the first
/// failure no further file is started; the error returned is that of the
/// first file (in the given order) that failed.
pub fn store_all(
    storage: &Storage,
    topic: &str,
    files: &[ToStore<'_>],
    concurrency: usize,
) -> Result<(), ExportError> {
    let workers = concurrency.clamp(1, files.len().max(1));
    if workers == 1 {
        return files
            .iter()
            .try_for_each(|f| store(storage, topic, f.file, f.had_dead_letters));
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let errors: Mutex<Vec<(usize, ExportError)>> = Mutex::default();
    // The uploads log inside the topic's span, as they would inline.
    let span = tracing::Span::current();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let _entered = span.enter();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = files.get(index) else { break };
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(error) = store(storage, topic, item.file, item.had_dead_letters) {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut errors) = errors.lock() {
                            errors.push((index, error));
                        }
                    }
                }
            });
        }
    });
    let errors = errors
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match errors.into_iter().min_by_key(|(index, _)| *index) {
        Some((_, error)) => Err(error),
        None => Ok(()),
    }
}

/// Stores a finished file: its dead letters first, then the data file,
/// whose presence is what says the range is exported; a crash between the
/// two leaves dead letters without data, which the next run removes
/// before it reads the range again.
fn store(
    storage: &Storage,
    topic: &str,
    file: &WrittenFile,
    had_dead_letters: bool,
) -> Result<(), ExportError> {
    if let Some((local, key)) = &file.dead_letters {
        storage.upload(local, key)?;
        crate::crash_point!("export::between-dead-letters-and-data");
    }
    storage.upload(&file.staging, &file.key)?;
    if file.dead_letters.is_none() && had_dead_letters {
        // An earlier export of the same range dead-lettered records this
        // one wrote (the schema registry answered since, say).
        storage.delete(&layout::dead_letter_key(
            topic,
            file.partition,
            file.first,
            file.last,
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use async_trait::async_trait;
    use futures_util::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::path::Path as ObjectPath;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        PutMultipartOptions, PutOptions, PutPayload, PutResult,
    };

    use super::*;

    /// An in-memory store whose puts take a while, counting how many are in
    /// flight at once and in which order they finish; a put to a key
    /// containing `fail_on` fails.
    #[derive(Debug)]
    struct SlowStore {
        inner: InMemory,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
        finished: Mutex<Vec<String>>,
        fail_on: Option<&'static str>,
    }

    impl SlowStore {
        fn new(fail_on: Option<&'static str>) -> Arc<Self> {
            Arc::new(SlowStore {
                inner: InMemory::new(),
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
                finished: Mutex::default(),
                fail_on,
            })
        }
    }

    impl fmt::Display for SlowStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("SlowStore")
        }
    }

    #[async_trait]
    impl ObjectStore for SlowStore {
        async fn put_opts(
            &self,
            location: &ObjectPath,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if self.fail_on.is_some_and(|k| location.as_ref().contains(k)) {
                return Err(object_store::Error::Generic {
                    store: "SlowStore",
                    source: "refused, as the test asks".into(),
                });
            }
            let result = self.inner.put_opts(location, payload, opts).await;
            self.finished.lock().unwrap().push(location.to_string());
            result
        }
        async fn put_multipart_opts(
            &self,
            location: &ObjectPath,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &ObjectPath,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<ObjectPath>>,
        ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
            self.inner.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&ObjectPath>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&ObjectPath>,
        ) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &ObjectPath,
            to: &ObjectPath,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    /// `count` staged files of partition `p`, offsets `10p..10p+9`; the
    /// even ones with dead letters.
    fn staged(dir: &std::path::Path, count: i32) -> Vec<WrittenFile> {
        (0..count)
            .map(|p| {
                let (first, last) = (i64::from(p) * 10, i64::from(p) * 10 + 9);
                let staging = dir.join(format!("{p}.parquet"));
                std::fs::write(&staging, format!("data of {p}")).unwrap();
                let dead_letters = (p % 2 == 0).then(|| {
                    let local = dir.join(format!("{p}.jsonl"));
                    std::fs::write(&local, format!("dead letters of {p}")).unwrap();
                    (local, layout::dead_letter_key("t", p, first, last))
                });
                WrittenFile {
                    staging,
                    key: layout::data_key("t", p, first, last),
                    partition: p,
                    first,
                    last,
                    rows: 10,
                    bytes: 0,
                    dead_lettered: 0,
                    dead_letters,
                    stats: Vec::new(),
                    location: None,
                    late: 0,
                    last_time: None,
                }
            })
            .collect()
    }

    fn to_store(files: &[WrittenFile]) -> Vec<ToStore<'_>> {
        files
            .iter()
            .map(|file| ToStore {
                file,
                had_dead_letters: false,
            })
            .collect()
    }

    #[test]
    fn files_are_stored_several_at_once_each_dead_letters_before_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = SlowStore::new(None);
        let storage = Storage::on_object_store("memory://test", store.clone());
        let files = staged(dir.path(), 16);
        store_all(&storage, "t", &to_store(&files), 8).unwrap();

        assert!(
            store.most_in_flight.load(Ordering::SeqCst) >= 2,
            "uploads never overlapped"
        );
        let finished = store.finished.lock().unwrap().clone();
        assert_eq!(finished.len(), 16 + 8, "{finished:?}");
        for file in &files {
            let data = storage.get(&file.key).unwrap();
            assert_eq!(data, format!("data of {}", file.partition).as_bytes());
            let data_at = finished.iter().position(|k| *k == file.key).unwrap();
            if let Some((_, key)) = &file.dead_letters {
                let dead_at = finished.iter().position(|k| k == key).unwrap();
                assert!(dead_at < data_at, "{key} stored after its data file");
            }
        }
    }

    #[test]
    fn a_failed_upload_is_returned_and_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = SlowStore::new(Some("t+5+50-59.parquet"));
        let storage = Storage::on_object_store("memory://test", store.clone());
        let files = staged(dir.path(), 12);
        let error = store_all(&storage, "t", &to_store(&files), 4)
            .unwrap_err()
            .to_string();
        assert!(error.contains("t+5+50-59.parquet"), "{error}");
        // What was stored is whole: every data file present holds its data.
        for file in &files {
            if let Ok(data) = storage.get(&file.key) {
                assert_eq!(data, format!("data of {}", file.partition).as_bytes());
            }
        }
        assert!(storage.get(&files[5].key).is_err());
    }

    #[test]
    fn one_at_a_time_keeps_the_given_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SlowStore::new(None);
        let storage = Storage::on_object_store("memory://test", store.clone());
        let files = staged(dir.path(), 4);
        store_all(&storage, "t", &to_store(&files), 1).unwrap();
        assert_eq!(store.most_in_flight.load(Ordering::SeqCst), 1);
        let data: Vec<String> = store
            .finished
            .lock()
            .unwrap()
            .iter()
            .filter(|k| k.ends_with(".parquet"))
            .cloned()
            .collect();
        let expected: Vec<String> = files.iter().map(|f| f.key.clone()).collect();
        assert_eq!(data, expected);
    }
}
