//! Offsets Kafka no longer has, read back from the export. A fetch or a
//! search asked for offsets below a partition's earliest (retention or
//! compaction removed them) reads them here when the topic is exported:
//! from the Parquet files, which are named by the offsets they hold, or
//! from the Delta table, whose log's `add` actions carry each file's
//! partition and offsets. Files are found by offset range from the names
//! under the partition's own folder, the time layout's range records, or
//! the table's log; nothing lists a whole topic and no query engine runs.
//!
//! What a record read from the lake carries is what the export stored:
//! its offset, timestamp, key, headers and value, the value as the file
//! keeps it (a JSON topic's text, a raw topic's bytes, an Avro topic's
//! value decoded to JSON text). Offsets a file named for them does not
//! hold (compacted away before the export read them, or dead-lettered by
//! it), offsets no file covers, and files the log names that are gone are
//! reported as [`Missing`], never invented.

mod files;
mod rows;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

use crate::config::{Connections, ExportFormat, TopicEntry};
use crate::record::KafkaRecord;
use crate::storage::{Storage, StorageError};

pub use files::LakeFile;

/// Where a record of an answer was read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Kafka,
    /// The export's files or table: the offset is below the partition's
    /// earliest.
    Lake,
}

/// Offsets below a partition's earliest that the lake cannot give, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Missing {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The store did not answer or refused: nothing is known about the
    /// records, which are not said to be missing.
    #[error("the export's storage `{store}` cannot be read now: {source}")]
    Unavailable {
        store: String,
        #[source]
        source: StorageError,
    },
    /// The store did not answer before the request's time was up (a store
    /// that refuses connections is retried for minutes by its client).
    #[error(
        "the export's storage `{store}` did not answer within the request's time: \
         it is down or slow; try again later"
    )]
    NoAnswer { store: String },
    /// The store answered with something that is not what an export
    /// writes there.
    #[error("{key} in the export's storage `{store}` cannot be read: {reason}")]
    Unreadable {
        store: String,
        key: String,
        reason: String,
    },
}

/// How a topic was exported, from its topics.json entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `topic=T/partition=P/T+P+<first>-<last>.parquet`.
    Files,
    /// Time folders, the offsets in the range records under `_ranges/`.
    FilesByTime,
    /// A Delta table at `<T>/`, the offsets in its log.
    Table,
}

/// The export read back: its storage and how each exported topic lays
/// out its files.
pub struct Lake {
    storage: Storage,
    topics: BTreeMap<String, Layout>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("store", &self.storage.url())
            .field("topics", &self.topics)
            .finish()
    }
}

impl Lake {
    /// The topics of `entries` (a topics.json), exported into `storage`.
    /// A topic exported twice (files and a table side by side) is read
    /// from its first entry.
    pub fn new(storage: Storage, entries: &[TopicEntry]) -> Self {
        let mut topics = BTreeMap::new();
        for entry in entries {
            let layout = match (entry.format, entry.partition_by) {
                (ExportFormat::Delta, _) => Layout::Table,
                (ExportFormat::Parquet, Some(_)) => Layout::FilesByTime,
                (ExportFormat::Parquet, None) => Layout::Files,
            };
            topics.entry(entry.topic.clone()).or_insert(layout);
        }
        Lake { storage, topics }
    }

    /// The export `entries` describe, into `out` or the connections'
    /// storage: where `sluice export` and the timer put it.
    pub fn open(
        entries: &[TopicEntry],
        connections: &Connections,
        out: Option<&str>,
    ) -> Result<Self, StorageError> {
        let url = out.map_or_else(|| connections.storage_url(), str::to_owned);
        let storage = Storage::open(&url, &connections.azure_credentials())?;
        Ok(Lake::new(storage, entries))
    }

    /// Whether `topic` is exported, so offsets below its earliest are
    /// looked for here.
    pub fn exports(&self, topic: &str) -> bool {
        self.topics.contains_key(topic)
    }

    /// The store's URL, as errors name it.
    pub fn store(&self) -> &str {
        self.storage.url()
    }

    /// Reads `topic` partition `partition` at offsets `from..to`, one file
    /// at a time, offering each record to `take` in ascending offsets (or
    /// descending) until it answers `false` or `deadline` passes between
    /// files. What is left is in the answer, with the offsets the lake
    /// cannot give.
    pub fn read<E: From<LakeError>>(
        &self,
        topic: &str,
        partition: i32,
        (from, to): (i64, i64),
        descending: bool,
        deadline: Option<Instant>,
        mut take: impl FnMut(KafkaRecord) -> Result<bool, E>,
    ) -> Result<LakeRead, E> {
        let mut read = LakeRead {
            left: (from, to),
            missing: Vec::new(),
        };
        if from >= to || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(read);
        }
        let Some(layout) = self.topics.get(topic).copied() else {
            read.missing.push(Missing {
                partition,
                first: from,
                last: to - 1,
                reason: "the topic is not exported".into(),
            });
            read.left = (from, from);
            return Ok(read);
        };
        let mut found = files::overlapping(self, layout, topic, partition, (from, to), deadline)?;
        if descending {
            found.reverse();
        }
        // The next offset not yet accounted for, from the end read towards.
        let mut edge = if descending { to } else { from };
        // Whether the time cut the read short.
        let mut cut = false;
        for file in found {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                cut = true;
                break;
            }
            // The file's share of what is asked.
            let (first, end) = (file.first.max(from), file.last.saturating_add(1).min(to));
            let gap = if descending {
                (end, edge)
            } else {
                (edge, first)
            };
            if gap.0 < gap.1 {
                read.missing.push(Missing {
                    partition,
                    first: gap.0,
                    last: gap.1 - 1,
                    reason: "no exported file holds these offsets".into(),
                });
            }
            let records = match self.records_of(&file, topic, partition, (first, end), deadline) {
                // The store answered the listing: a file it has not sent
                // by the request's time stops the read here, for the
                // next request to go on from.
                Err(LakeError::NoAnswer { .. }) => {
                    cut = true;
                    break;
                }
                Err(error) => return Err(error.into()),
                Ok(Ok(records)) => records,
                Ok(Err(gone)) => {
                    read.missing.push(Missing {
                        partition,
                        first,
                        last: end - 1,
                        reason: gone,
                    });
                    edge = if descending { first } else { end };
                    read.left = if descending { (from, edge) } else { (edge, to) };
                    continue;
                }
            };
            let mut next = if descending { end } else { first };
            let held: Box<dyn Iterator<Item = KafkaRecord>> = if descending {
                Box::new(records.into_iter().rev())
            } else {
                Box::new(records.into_iter())
            };
            for record in held {
                let offset = record.offset;
                let skipped = if descending {
                    (offset + 1, next)
                } else {
                    (next, offset)
                };
                if !take(record)? {
                    // Not looked at: it is where the read goes on.
                    push_not_held(&mut read.missing, partition, skipped, &file);
                    read.left = if descending {
                        (from, offset + 1)
                    } else {
                        (offset, to)
                    };
                    return Ok(read);
                }
                push_not_held(&mut read.missing, partition, skipped, &file);
                next = if descending { offset } else { offset + 1 };
            }
            let tail = if descending {
                (first, next)
            } else {
                (next, end)
            };
            push_not_held(&mut read.missing, partition, tail, &file);
            edge = if descending { first } else { end };
            read.left = if descending { (from, edge) } else { (edge, to) };
        }
        let done = if descending {
            read.left.1 <= from
        } else {
            read.left.0 >= to
        };
        if !done && !cut {
            // Every file read: what is left no file holds.
            let (first, last) = (read.left.0, read.left.1 - 1);
            read.missing.push(Missing {
                partition,
                first,
                last,
                reason: "no exported file holds these offsets".into(),
            });
            read.left = (from, from);
        }
        Ok(read)
    }

    /// A file's records at `from..to`, or why they are gone (the file the
    /// listing, record or log named was removed since).
    fn records_of(
        &self,
        file: &LakeFile,
        topic: &str,
        partition: i32,
        (from, to): (i64, i64),
        deadline: Option<Instant>,
    ) -> Result<Result<Vec<KafkaRecord>, String>, LakeError> {
        let mut records = Vec::new();
        for key in &file.keys {
            let len = match self.within(deadline, self.storage.store().size(key))? {
                Ok(len) => len,
                Err(error) if error.is_not_found() => {
                    return Ok(Err(format!(
                        "the file {key} named for these offsets ({}) is gone",
                        file.named_by
                    )));
                }
                Err(source) => return Err(self.unavailable(source)),
            };
            let fetch = |ranges: &[std::ops::Range<u64>]| {
                self.within(deadline, self.storage.store().get_ranges(key, ranges))?
                    .map_err(|source| self.unavailable(source))
            };
            let mut held =
                rows::records_in(len, fetch, topic, partition, (from, to))?.map_err(|reason| {
                    LakeError::Unreadable {
                        store: self.store().to_owned(),
                        key: key.clone(),
                        reason,
                    }
                })?;
            records.append(&mut held);
        }
        // A time layout's unit spreads its offsets over several files.
        records.sort_by_key(|r| r.offset);
        records.dedup_by_key(|r| r.offset);
        Ok(Ok(records))
    }

    /// Runs a storage call, given up at `deadline`: the store's client
    /// retries a store that refuses connections for minutes, which must
    /// not hold a request past its time. The outer error is the time.
    fn within<T>(
        &self,
        deadline: Option<Instant>,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<Result<T, StorageError>, LakeError> {
        let Some(deadline) = deadline else {
            return Ok(crate::io::block_on(call));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        crate::io::block_on(async { tokio::time::timeout(left, call).await }).map_err(|_| {
            LakeError::NoAnswer {
                store: self.store().to_owned(),
            }
        })
    }

    fn unavailable(&self, source: StorageError) -> LakeError {
        LakeError::Unavailable {
            store: self.store().to_owned(),
            source,
        }
    }
}

/// Offsets `from..to` that `file`, named for them, does not hold.
fn push_not_held(
    missing: &mut Vec<Missing>,
    partition: i32,
    (from, to): (i64, i64),
    file: &LakeFile,
) {
    if from < to {
        missing.push(Missing {
            partition,
            first: from,
            last: to - 1,
            reason: format!(
                "not in {}, which is named for them: removed from the topic (compaction) \
                 before the export read it, or dead-lettered by the export",
                file.keys.first().map_or("the file", String::as_str)
            ),
        });
    }
}

/// What [`Lake::read`] left and could not give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeRead {
    /// Offsets not looked at yet (`from..to`; empty once read to its end).
    pub left: (i64, i64),
    pub missing: Vec<Missing>,
}

impl LakeRead {
    pub fn finished(&self) -> bool {
        self.left.0 >= self.left.1
    }
}
