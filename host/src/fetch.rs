//! Records at given offsets, for people: the one entry point of `sluice
//! fetch` and `GET /api/fetch`. Reads never wait for records that do not
//! exist yet and stop at limits a caller cannot raise; the result says why
//! it ended. Values are decoded (Confluent Avro) when asked, a value that
//! cannot be shown as text says why, and a transform's dry run can be
//! asked for beside each record. Offsets below a partition's earliest are
//! read from the export (`lake`) when the topic is exported, before the
//! partition's records in Kafka, within the same limits.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{CodecError, SchemaRegistry, decode_confluent};
use crate::kafka::{
    BoundedReader, KafkaConfig, KafkaError, PartitionRange, ReadPlan, ReaderPool, Start,
};
use crate::lake::{Lake, LakeError, Missing, Source};
use crate::record::{Header, KafkaRecord, Outcome};
use crate::runtime::{GuestError, Limits, RuntimeError, Transform};

/// Where to read: partitions and the offset (or time) each starts at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchQuery {
    pub topic: String,
    pub start: Start,
    /// Records per partition, at most (the request's `count`).
    pub count: u64,
}

/// Bounds no request can exceed, over the whole request: every partition's
/// records together.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// Records returned, at most.
    pub max_count: u64,
    /// Bytes of the records returned (keys, values and headers as
    /// stored), at most.
    pub max_bytes: usize,
    /// How long the read may take. Polls never wait past it, so the read
    /// ends within one poll (milliseconds) of it, however slowly the broker
    /// answers; decoding and a dry run come after.
    pub max_time: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_count: 10_000,
            max_bytes: 16 << 20,
            max_time: Duration::from_secs(10),
        }
    }
}

impl FetchLimits {
    /// No limits: for the command line, which is trusted with any count.
    pub fn none() -> Self {
        FetchLimits {
            max_count: u64::MAX,
            max_bytes: usize::MAX,
            max_time: Duration::MAX,
        }
    }
}

/// Why a read ended before every requested record was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitedBy {
    Count,
    Bytes,
    Time,
}

/// A fetch: what to read, how to show values, and an optional dry run.
#[derive(Default)]
pub struct Fetch {
    /// Decode Confluent-framed Avro values with this registry.
    pub avro: Option<Arc<SchemaRegistry>>,
    /// Run this transform over the records, without producing anything.
    pub dry_run: Option<Arc<Transform>>,
    /// Where the topic is exported: offsets below a partition's earliest
    /// are read from there.
    pub lake: Option<Arc<Lake>>,
}

#[derive(Debug)]
pub struct Fetched {
    pub records: Vec<KafkaRecord>,
    /// Where each record was read from, in the order of `records`.
    pub sources: Vec<Source>,
    /// Offsets below a partition's earliest that the export cannot give.
    pub missing: Vec<Missing>,
    /// The dry run's outcome per record, when one was asked for.
    pub outcomes: Option<Vec<Result<Outcome, GuestError>>>,
    /// Set when a limit, not the partitions' ends, stopped the read.
    pub limited_by: Option<LimitedBy>,
    /// `(partition, end of the readable range)`: the high watermark, or the
    /// start plus the count when that is lower.
    pub ends: Vec<(i32, i64)>,
    /// Where to ask again: the next offset of every partition a limit
    /// stopped before its range's end (empty when the read is complete).
    pub next_offsets: BTreeMap<i32, i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("the dry run could not start: {0}")]
    DryRun(#[from] RuntimeError),
    /// The registry could not be asked: the values cannot be decoded now,
    /// which says nothing about them (no record is marked undecodable).
    #[error("decoding the values: {0}")]
    SchemaRegistry(CodecError),
    /// The export could not be read: nothing is said about its records.
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// The consumer group fetches read as; nothing is ever committed to it.
const FETCH_GROUP: &str = "sluice-fetch";

/// Consumers for [`fetch`], kept connected between fetches.
pub fn reader_pool(config: KafkaConfig) -> ReaderPool {
    ReaderPool::new(config, FETCH_GROUP)
}

/// Header set on a fetched record whose value cannot be shown as it was
/// asked for (not UTF-8 text, an Avro frame that does not decode); the
/// value is then shown as stored, and this says why.
pub const DECODE_ERROR_HEADER: &str = "sluice.decode.error";

pub fn fetch(
    readers: &ReaderPool,
    query: &FetchQuery,
    limits: &FetchLimits,
    how: &Fetch,
) -> Result<Fetched, FetchError> {
    let plan = ReadPlan {
        topic: query.topic.clone(),
        group_id: readers.group_id().to_owned(),
        start: query.start.clone(),
        max_per_partition: Some(query.count),
        offset_increment: BTreeMap::new(),
    };
    let started = Instant::now();
    let lake = how
        .lake
        .as_deref()
        .filter(|lake| lake.exports(&query.topic));
    let (read, ends) = match (lake, &query.start) {
        (Some(lake), Start::Offsets(_) | Start::Timestamp { .. }) => {
            read_with_lake(readers, lake, &plan, query.count, limits, started)?
        }
        _ => readers.read(&plan, |reader| {
            let ends = reader
                .ranges()
                .iter()
                .map(|r| (r.partition, r.end))
                .collect();
            Ok((
                read_within(reader, limits, started, Taken::default())?,
                ends,
            ))
        })?,
    };
    let Read {
        mut records,
        mut sources,
        missing,
        limited_by,
        next_offsets,
    } = read;
    if let Start::Timestamp { millis, .. } = query.start {
        // Brokers answer a time past the last record with "the end", but
        // some (tansu) with the first offset: records older than asked for
        // are not what the caller wants either way.
        (records, sources) = records
            .into_iter()
            .zip(sources)
            .filter(|(r, _)| r.timestamp.is_none_or(|t| t >= millis))
            .unzip();
    }
    if let Some(registry) = &how.avro {
        // The lake holds an Avro value decoded already.
        for (record, source) in records.iter_mut().zip(&sources) {
            if *source == Source::Kafka {
                decode_avro(std::slice::from_mut(record), registry)?;
            }
        }
    }
    for record in &mut records {
        mark_if_not_text(record);
    }
    let outcomes = match &how.dry_run {
        Some(transform) => Some(dry_run(transform, &records)?),
        None => None,
    };
    Ok(Fetched {
        sources,
        records,
        missing,
        outcomes,
        limited_by,
        ends,
        next_offsets,
    })
}

/// A fetch of an exported topic: each partition's offsets below its
/// earliest come from the lake, then its records in Kafka from the
/// earliest on, all within the one request's limits and at most `count`
/// records a partition. At offsets, the lake is read from the asked
/// offset; from a time, when Kafka's first record at or after it is its
/// earliest (the time may lie in what it deleted), the lake's records at
/// or after the time are read from its first offset. Kafka and the lake
/// never overlap (the lake is read below the earliest only), so each
/// offset comes once, from Kafka when it has it.
fn read_with_lake(
    readers: &ReaderPool,
    lake: &Lake,
    plan: &ReadPlan,
    count: u64,
    limits: &FetchLimits,
    started: Instant,
) -> Result<(Read, Vec<(i32, i64)>), FetchError> {
    let topic = plan.topic.clone();
    // `partition -> (from, to)` read from the lake first.
    let spans = RefCell::new(BTreeMap::<i32, (i64, i64)>::new());
    let wide = i64::try_from(count).unwrap_or(i64::MAX);
    let time = match plan.start {
        Start::Timestamp { millis, .. } => Some(millis),
        _ => None,
    };
    let resolved = match &plan.start {
        // Resolved here, so that an offset below the earliest is no error.
        Start::Offsets(_) => ReadPlan {
            start: Start::Earliest,
            max_per_partition: None,
            ..plan.clone()
        },
        _ => plan.clone(),
    };
    let choose = |ranges: Vec<PartitionRange>| {
        let Start::Offsets(asked) = &plan.start else {
            let mut spans = spans.borrow_mut();
            for r in ranges.iter().filter(|r| r.start == r.low && r.low > 0) {
                spans.insert(r.partition, (0, r.low));
            }
            return Ok(ranges);
        };
        let mut chosen = Vec::new();
        for (&partition, &start) in asked {
            let range = ranges
                .iter()
                .find(|r| r.partition == partition)
                .ok_or_else(|| KafkaError::UnknownPartition {
                    topic: topic.clone(),
                    partition,
                    partitions: ranges.len(),
                })?;
            if start < 0 || start > range.high {
                return Err(KafkaError::OffsetOutOfRange {
                    topic: topic.clone(),
                    partition,
                    offset: start,
                    low: range.low,
                    high: range.high,
                }
                .into());
            }
            let end = start.saturating_add(wide);
            if start < range.low {
                spans
                    .borrow_mut()
                    .insert(partition, (start, end.min(range.low)));
            }
            let from = start.max(range.low);
            chosen.push(PartitionRange {
                start: from,
                end: end.min(range.high).max(from),
                ..*range
            });
        }
        Ok::<_, FetchError>(chosen)
    };
    readers.read_with(&resolved, choose, |reader| {
        let ends: Vec<(i32, i64)> = reader
            .ranges()
            .iter()
            .map(|r| (r.partition, r.end))
            .collect();
        let deadline = started.checked_add(limits.max_time);
        let mut taken = Taken::default();
        let mut lake_left = BTreeMap::new();
        for (&partition, &(from, to)) in spans.borrow().iter() {
            if taken.limited_by.is_some() {
                lake_left.insert(partition, from);
                continue;
            }
            let mut here = 0u64;
            let read = lake.read(&topic, partition, (from, to), false, deadline, |record| {
                if here >= count {
                    return Ok(false);
                }
                if let Some(millis) = time
                    && record.timestamp.is_some_and(|t| t < millis)
                {
                    return Ok::<_, FetchError>(true);
                }
                let took = taken.offer(record, Source::Lake, limits);
                here += u64::from(took);
                Ok(took)
            })?;
            let finished = read.finished();
            taken.missing.extend(read.missing);
            if here >= count {
                // The partition's count is reached in the lake: none of
                // its records in Kafka are asked for.
                taken.done.insert(partition);
            } else if !finished {
                lake_left.insert(partition, read.left.0);
                taken.limited_by.get_or_insert(LimitedBy::Time);
            }
            if here > 0 {
                taken.caps.insert(partition, count - here);
            }
        }
        let mut read = if taken.limited_by.is_some() {
            // A limit stopped the read in the lake: Kafka's records come
            // after, in the next request.
            let next_offsets = reader
                .ranges()
                .iter()
                .filter(|r| r.start < r.end && !taken.done.contains(&r.partition))
                .map(|r| (r.partition, r.start))
                .collect();
            Read {
                records: taken.records,
                sources: taken.sources,
                missing: taken.missing,
                limited_by: taken.limited_by,
                next_offsets,
            }
        } else {
            read_within(reader, limits, started, taken)?
        };
        // A partition left in the lake goes on from there.
        read.next_offsets.extend(lake_left);
        if !read.next_offsets.is_empty() {
            read.limited_by.get_or_insert(LimitedBy::Time);
        }
        Ok((read, ends))
    })
}

/// What a fetch has taken so far, over every partition and both sources.
#[derive(Default)]
struct Taken {
    records: Vec<KafkaRecord>,
    sources: Vec<Source>,
    missing: Vec<Missing>,
    bytes: usize,
    limited_by: Option<LimitedBy>,
    /// Records each partition may still take from Kafka, where the lake
    /// gave some of its count.
    caps: BTreeMap<i32, u64>,
    /// Partitions whose count the lake gave whole.
    done: BTreeSet<i32>,
}

impl Taken {
    /// Takes `record` unless a limit is reached: whether it was taken, or
    /// is not wanted (past its partition's count).
    fn offer(&mut self, record: KafkaRecord, source: Source, limits: &FetchLimits) -> bool {
        if self.limited_by.is_some() {
            return false;
        }
        if source == Source::Kafka
            && (self.done.contains(&record.partition)
                || self.caps.get(&record.partition) == Some(&0))
        {
            return true;
        }
        if self.records.len() as u64 >= limits.max_count {
            self.limited_by = Some(LimitedBy::Count);
            return false;
        }
        let after = self.bytes.saturating_add(record.payload_len());
        if after > limits.max_bytes {
            self.limited_by = Some(LimitedBy::Bytes);
            return false;
        }
        self.bytes = after;
        if source == Source::Kafka
            && let Some(cap) = self.caps.get_mut(&record.partition)
        {
            *cap -= 1;
        }
        self.records.push(record);
        self.sources.push(source);
        true
    }
}

/// What [`read_within`] read, why it stopped and where to go on.
struct Read {
    records: Vec<KafkaRecord>,
    sources: Vec<Source>,
    missing: Vec<Missing>,
    limited_by: Option<LimitedBy>,
    next_offsets: BTreeMap<i32, i64>,
}

/// Records one batch takes at most; fewer when the count limit leaves less
/// room, so no record is polled only to be left behind for the count.
const BATCH: u64 = 500;

/// Reads `reader` to its end or to the first limit reached, the limits
/// counting every partition's records together, and what `taken` holds
/// already (read from the lake).
fn read_within(
    reader: &mut BoundedReader,
    limits: &FetchLimits,
    started: Instant,
    mut taken: Taken,
) -> Result<Read, KafkaError> {
    // `None`: no time limit (the command line's `Duration::MAX`).
    let deadline = started.checked_add(limits.max_time);
    // Partitions with records polled but not returned: not finished.
    let mut left_behind = BTreeSet::new();
    loop {
        let room = limits.max_count.saturating_sub(taken.records.len() as u64);
        if room == 0 {
            taken.limited_by = Some(LimitedBy::Count);
            break;
        }
        let max = usize::try_from(room.min(BATCH)).unwrap_or(1);
        let Some(batch) = reader.next_batch_until(max, deadline)? else {
            break;
        };
        for record in batch {
            let partition = record.partition;
            if !taken.offer(record, Source::Kafka, limits) {
                left_behind.insert(partition);
            }
        }
        if taken.limited_by.is_some() {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            taken.limited_by = Some(LimitedBy::Time);
            break;
        }
    }
    let unfinished: BTreeSet<i32> = reader.unfinished().chain(left_behind).collect();
    if unfinished.is_empty() {
        // Every range was read to its end: whatever limit was reached on
        // the way left nothing behind.
        taken.limited_by = None;
    }
    let mut next_offsets: BTreeMap<i32, i64> = reader
        .ranges()
        .iter()
        .filter(|r| unfinished.contains(&r.partition))
        .map(|r| (r.partition, r.start))
        .collect();
    for (record, source) in taken.records.iter().zip(&taken.sources) {
        if *source == Source::Lake {
            continue;
        }
        if let Some(next) = next_offsets.get_mut(&record.partition) {
            *next = (*next).max(record.offset.saturating_add(1));
        }
    }
    Ok(Read {
        records: taken.records,
        sources: taken.sources,
        missing: taken.missing,
        limited_by: taken.limited_by,
        next_offsets,
    })
}

/// Replaces Confluent-framed Avro values with their JSON text, using the
/// writer's schema from the registry; one that does not decode stays as
/// stored, with the reason in [`DECODE_ERROR_HEADER`]. A registry that
/// cannot be asked fails the fetch instead: marking values undecodable
/// would blame them.
pub(crate) fn decode_avro(
    records: &mut [KafkaRecord],
    registry: &SchemaRegistry,
) -> Result<(), FetchError> {
    for record in records {
        let Some(bytes) = record.value.as_deref() else {
            continue;
        };
        match decode_confluent(bytes, registry) {
            Ok(value) => record.value = Some(value.to_string().into_bytes()),
            Err(error) if error.is_unavailable() => return Err(FetchError::SchemaRegistry(error)),
            Err(error) => record.headers.push(Header {
                key: DECODE_ERROR_HEADER.to_owned(),
                value: Some(error.to_string().into_bytes()),
            }),
        }
    }
    Ok(())
}

/// A value that is not UTF-8 text is shown in hex, never with its bytes
/// replaced; the header says so and where the text breaks.
pub(crate) fn mark_if_not_text(record: &mut KafkaRecord) {
    let Some(Err(error)) = record.value.as_deref().map(std::str::from_utf8) else {
        return;
    };
    if record.headers.iter().any(|h| h.key == DECODE_ERROR_HEADER) {
        return;
    }
    record.headers.push(Header {
        key: DECODE_ERROR_HEADER.to_owned(),
        value: Some(format!("value is not UTF-8 text ({error}); shown in hex").into_bytes()),
    });
}

/// What a transform would do with each record: the dry run.
pub fn dry_run(
    transform: &Arc<Transform>,
    records: &[KafkaRecord],
) -> Result<Vec<Result<Outcome, GuestError>>, RuntimeError> {
    Ok(transform
        .transformer(Limits::default(), Default::default())?
        .process(records))
}
