//! Finding records without knowing their offsets: by key (reading only the
//! partition the producer's partitioner chose), by content (a filter on the
//! decoded value, key and headers), from a time, oldest or newest first.
//! The one entry point of `GET /api/search`.
//!
//! A search is streamed and bounded: records are looked at batch by batch
//! (a window at a time, newest first) and only matches are kept, so its
//! memory does not grow with the records it scans; it stops at a budget of
//! records scanned and of time (a request can lower both, never raise them
//! past the server's), at the request's limit of matches, or at the bytes
//! the server returns at most. The answer says why it stopped and gives a
//! [`Cursor`] holding what is left of each partition, to go on from there.

mod cursor;
mod filter;
mod key;
mod partitioner;
mod scan;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use cursor::{BadCursor, Cursor, Order};
pub use filter::{Filter, FilterError, MAX_FILTER_LEN, Op, Path, Root, Subject};
pub use key::{BadKey, KeyForm};
pub use partitioner::{Partitioner, UnknownPartitioner};
pub use scan::search;

use crate::codec::SchemaRegistry;
use crate::lake::{Lake, Missing, Source};
use crate::record::KafkaRecord;

/// Records whose key is exactly `key` (its bytes: a request may write them
/// as text, hex or base64, see [`KeyForm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySearch {
    pub key: Vec<u8>,
    /// The partitioners whose partitions are read (each may name another).
    pub partitioners: Vec<Partitioner>,
    /// Read every partition, not only the partitioners' ones: for producers
    /// with a partitioner of their own, or a topic that gained partitions
    /// after the records were written.
    pub all_partitions: bool,
}

/// What to search and how far.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub topic: String,
    /// These partitions only; every one (or the key's) when empty.
    pub partitions: Vec<i32>,
    pub key: Option<KeySearch>,
    pub filter: Option<Filter>,
    /// Records at or after this time (Unix epoch milliseconds): where each
    /// partition's search starts (`offsetsForTimes`), or, newest first,
    /// where it ends.
    pub from_timestamp: Option<i64>,
    pub order: Order,
    /// Where an earlier search stopped: its partitions and order replace
    /// `partitions` and `order`; the key, filter and time still apply.
    pub cursor: Option<Cursor>,
    /// Matches returned, at most.
    pub limit: u64,
    /// The request's own budget: lower than the server's, or ignored. The
    /// time stops an answer only once it has looked at a record, so each
    /// answer gets somewhere (within the server's time).
    pub max_scanned: Option<u64>,
    pub max_time: Option<Duration>,
}

/// Bounds no request can exceed.
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    /// Records looked at per request, matching or not.
    pub max_scanned: u64,
    /// How long one request may read; polls never wait past it.
    pub max_time: Duration,
    /// Matches returned per request.
    pub max_matches: u64,
    /// Bytes of the matches returned (keys, values and headers as stored).
    pub max_bytes: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            max_scanned: 1_000_000,
            max_time: Duration::from_secs(10),
            max_matches: 10_000,
            max_bytes: 16 << 20,
        }
    }
}

impl SearchLimits {
    /// No limits: for the command line, which is trusted with any search.
    pub fn none() -> Self {
        SearchLimits {
            max_scanned: u64::MAX,
            max_time: Duration::MAX,
            max_matches: u64::MAX,
            max_bytes: usize::MAX,
        }
    }
}

/// Why a search ended before every record of its partitions was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoppedBy {
    /// The request's limit of matches was reached.
    Limit,
    /// The budget of records scanned.
    Records,
    Time,
    /// The bytes of the matches returned.
    Bytes,
}

/// How values are shown (decoded from Confluent Avro when a registry is
/// given), and where the topic is exported (offsets below a partition's
/// earliest are searched there).
#[derive(Default)]
pub struct SearchHow {
    pub avro: Option<Arc<SchemaRegistry>>,
    pub lake: Option<Arc<Lake>>,
}

#[derive(Debug)]
pub struct Searched {
    /// The matches: each partition's in the order read (ascending offsets,
    /// or descending newest first).
    pub records: Vec<KafkaRecord>,
    /// Where each match was read from, in the order of `records`.
    pub sources: Vec<Source>,
    /// Offsets below a partition's earliest that the export cannot give.
    pub missing: Vec<Missing>,
    /// For a key search, per match, the partitioners that put the key in
    /// the partition it was found in (none: another partitioner did).
    pub matched_by: Vec<Vec<Partitioner>>,
    /// For a key search, the partition each partitioner gives the key.
    pub key_partitions: BTreeMap<Partitioner, i32>,
    /// The partitions searched.
    pub partitions: Vec<i32>,
    /// Records looked at, matching or not.
    pub scanned: u64,
    pub order: Order,
    /// Set when the search stopped before its end.
    pub stopped_by: Option<StoppedBy>,
    /// What is left, to ask again with; `None` once every partition was
    /// searched to its end.
    pub cursor: Option<Cursor>,
}

impl Searched {
    /// The next offset each unfinished partition would look at: ascending,
    /// the first not looked at; newest first, the one below the last.
    pub fn next_offsets(&self) -> BTreeMap<i32, i64> {
        let Some(cursor) = &self.cursor else {
            return BTreeMap::new();
        };
        cursor
            .left
            .iter()
            .map(|(p, (from, to))| match cursor.order {
                Order::OldestFirst => (*p, *from),
                Order::NewestFirst => (*p, to - 1),
            })
            .collect()
    }
}
