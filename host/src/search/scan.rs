//! The search's reads: ascending through a pooled reader, or newest first
//! as windows read from each partition's end downwards; every record looked
//! at once and dropped unless it matches. An exported topic's offsets below
//! a partition's earliest are read from the lake: before Kafka's records
//! ascending, after them newest first, with the same rules and budgets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::{Cursor, Order, SearchHow, SearchLimits, SearchQuery, Searched, StoppedBy};
use crate::fetch::{FetchError, decode_avro, mark_if_not_text};
use crate::kafka::{BoundedReader, KafkaError, PartitionRange, ReadPlan, ReaderPool, Start};
use crate::lake::{Lake, Missing, Source};
use crate::record::KafkaRecord;
use crate::search::Subject;

/// Records one ascending batch takes at most.
const BATCH: u64 = 500;
/// Records one newest-first round reads over all its partitions, at most:
/// each partition's window is this shared out, within the bounds below.
const ROUND: i64 = 4_000;
const MIN_WINDOW: i64 = 64;
const MAX_WINDOW: i64 = 500;

/// Searches `query.topic` within `limits` (and the query's lower budget).
pub fn search(
    readers: &ReaderPool,
    query: &SearchQuery,
    limits: &SearchLimits,
    how: &SearchHow,
) -> Result<Searched, FetchError> {
    let started = Instant::now();
    let asked_time = query
        .max_time
        .map_or(limits.max_time, |t| t.min(limits.max_time));
    let mut scan = Scan {
        query,
        how,
        asked_deadline: started.checked_add(asked_time),
        deadline: started.checked_add(limits.max_time),
        max_scanned: query
            .max_scanned
            .map_or(limits.max_scanned, |n| n.min(limits.max_scanned)),
        max_matches: query.limit.min(limits.max_matches),
        max_bytes: limits.max_bytes,
        lake: how
            .lake
            .as_deref()
            .filter(|lake| lake.exports(&query.topic)),
        found: Vec::new(),
        sources: Vec::new(),
        missing: Vec::new(),
        bytes: 0,
        scanned: 0,
        stopped_by: None,
    };
    let plan = ReadPlan {
        topic: query.topic.clone(),
        group_id: readers.group_id().to_owned(),
        start: match (&query.cursor, query.from_timestamp) {
            (None, Some(millis)) => Start::Timestamp {
                partitions: Vec::new(),
                millis,
            },
            _ => Start::Earliest,
        },
        max_per_partition: None,
        offset_increment: BTreeMap::new(),
    };
    let order = query.cursor.as_ref().map_or(query.order, |c| c.order);
    let mut key_partitions = BTreeMap::new();
    let choose = |ranges: Vec<PartitionRange>| chosen(query, ranges, &mut key_partitions);
    let (partitions, left) = match order {
        Order::OldestFirst => readers.read_with(&plan, choose, |reader| {
            let partitions = reader.ranges().iter().map(|r| r.partition).collect();
            let below = scan.below_earliest(reader.ranges());
            Ok::<_, FetchError>((partitions, scan.ascending(reader, below)?))
        })?,
        Order::NewestFirst => {
            let ranges = readers.read_with(&plan, choose, |reader| {
                Ok::<_, FetchError>(reader.ranges().to_vec())
            })?;
            let partitions = ranges.iter().map(|r| r.partition).collect();
            let below = scan.below_earliest(&ranges);
            let mut left = scan.descending(readers, &plan, &ranges)?;
            scan.descending_in_lake(below, &mut left)?;
            (partitions, left)
        }
    };
    let cursor = (!left.is_empty()).then_some(Cursor { order, left });
    let Scan {
        mut found,
        sources,
        missing,
        scanned,
        stopped_by,
        ..
    } = scan;
    for record in &mut found {
        mark_if_not_text(record);
    }
    let matched_by = match &query.key {
        Some(_) => found
            .iter()
            .map(|r| {
                key_partitions
                    .iter()
                    .filter(|(_, p)| **p == r.partition)
                    .map(|(partitioner, _)| *partitioner)
                    .collect()
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Searched {
        records: found,
        sources,
        missing,
        matched_by,
        key_partitions,
        partitions,
        scanned,
        order,
        // Every partition read to its end: whatever limit was reached on
        // the way left nothing behind.
        stopped_by: cursor.as_ref().and(stopped_by),
        cursor,
    })
}

/// The ranges a search reads, from every partition's (`ranges`): a
/// cursor's, the named partitions, or the key's partitions (noted in
/// `key_partitions`).
fn chosen(
    query: &SearchQuery,
    ranges: Vec<PartitionRange>,
    key_partitions: &mut BTreeMap<super::Partitioner, i32>,
) -> Result<Vec<PartitionRange>, FetchError> {
    let count = i32::try_from(ranges.len()).unwrap_or(i32::MAX);
    let unknown = |partition: i32| KafkaError::UnknownPartition {
        topic: query.topic.clone(),
        partition,
        partitions: ranges.len(),
    };
    if let Some(key) = &query.key {
        for partitioner in &key.partitioners {
            if let Some(partition) = partitioner.partition(&key.key, count) {
                key_partitions.insert(*partitioner, partition);
            }
        }
    }
    if let Some(cursor) = &query.cursor {
        let mut left = Vec::new();
        for (partition, (from, to)) in &cursor.left {
            let range = ranges
                .iter()
                .find(|r| r.partition == *partition)
                .ok_or_else(|| unknown(*partition))?;
            // Records deleted since the cursor was given are skipped.
            let start = (*from).clamp(range.low, range.high);
            left.push(PartitionRange {
                start,
                end: (*to).clamp(start, range.high),
                ..*range
            });
        }
        return Ok(left);
    }
    let wanted: Option<BTreeSet<i32>> = if !query.partitions.is_empty() {
        if let Some(missing) = query
            .partitions
            .iter()
            .find(|p| !ranges.iter().any(|r| r.partition == **p))
        {
            return Err(unknown(*missing).into());
        }
        Some(query.partitions.iter().copied().collect())
    } else {
        match &query.key {
            // An empty key under consistent_random alone names no
            // partition: every one is read.
            Some(key) if !key.all_partitions && !key_partitions.is_empty() => {
                Some(key_partitions.values().copied().collect())
            }
            _ => None,
        }
    };
    Ok(ranges
        .into_iter()
        .filter(|r| wanted.as_ref().is_none_or(|w| w.contains(&r.partition)))
        .collect())
}

/// One search's state: what it found and how much of its budget is spent.
struct Scan<'a> {
    query: &'a SearchQuery,
    how: &'a SearchHow,
    /// The request's time: it stops an answer once a record was looked at,
    /// so each answer gets somewhere (a first fetch can take longer than
    /// a request asks for).
    asked_deadline: Option<Instant>,
    /// The server's time: it always stops an answer.
    deadline: Option<Instant>,
    max_scanned: u64,
    max_matches: u64,
    max_bytes: usize,
    /// Where the topic is exported, when it is.
    lake: Option<&'a Lake>,
    found: Vec<KafkaRecord>,
    /// Where each match was read from.
    sources: Vec<Source>,
    missing: Vec<Missing>,
    bytes: usize,
    scanned: u64,
    stopped_by: Option<StoppedBy>,
}

impl Scan<'_> {
    /// Looks at `record`: `false` when a limit stopped the search before
    /// it (it is left for the cursor), `true` once it is looked at.
    fn offer(&mut self, record: KafkaRecord) -> Result<bool, FetchError> {
        self.offer_from(record, Source::Kafka)
    }

    /// As [`Scan::offer`], for a record read from `source`.
    fn offer_from(&mut self, mut record: KafkaRecord, source: Source) -> Result<bool, FetchError> {
        if self.stopped_by.is_some() {
            return Ok(false);
        }
        if self.scanned >= self.max_scanned {
            self.stopped_by = Some(StoppedBy::Records);
            return Ok(false);
        }
        if let Some(key) = &self.query.key
            && record.key.as_deref() != Some(key.key.as_slice())
        {
            self.scanned += 1;
            return Ok(true);
        }
        if let Some(millis) = self.query.from_timestamp
            && record.timestamp.is_some_and(|t| t < millis)
        {
            // Brokers answer a time past the last record with "the end",
            // but some (tansu) with the first offset.
            self.scanned += 1;
            return Ok(true);
        }
        // The lake holds an Avro value decoded already.
        if let Some(registry) = &self.how.avro
            && source == Source::Kafka
        {
            decode_avro(std::slice::from_mut(&mut record), registry)?;
        }
        if let Some(filter) = &self.query.filter
            && !filter.matches(&Subject::new(&record))
        {
            self.scanned += 1;
            return Ok(true);
        }
        let bytes = self.bytes.saturating_add(record.payload_len());
        if bytes > self.max_bytes {
            self.stopped_by = Some(StoppedBy::Bytes);
            return Ok(false);
        }
        self.scanned += 1;
        self.bytes = bytes;
        self.found.push(record);
        self.sources.push(source);
        if self.found.len() as u64 >= self.max_matches {
            self.stopped_by = Some(StoppedBy::Limit);
        }
        Ok(true)
    }

    /// The time that stops this answer now: the request's once a record
    /// was looked at, the server's until then.
    fn deadline(&self) -> Option<Instant> {
        if self.scanned > 0 {
            self.asked_deadline
        } else {
            self.deadline
        }
    }

    /// Stops the search when its time is up; whether it is.
    fn out_of_time(&mut self) -> bool {
        if self.deadline().is_some_and(|d| Instant::now() >= d) {
            self.stopped_by.get_or_insert(StoppedBy::Time);
        }
        self.stopped_by.is_some()
    }

    /// Each partition's offsets below its earliest that the lake is read
    /// for: what a cursor left there, or (a new search) every exported
    /// offset below the earliest, unless a time put the start in Kafka
    /// past its earliest.
    fn below_earliest(&self, ranges: &[PartitionRange]) -> BTreeMap<i32, (i64, i64)> {
        if self.lake.is_none() {
            return BTreeMap::new();
        }
        ranges
            .iter()
            .filter_map(|r| {
                let (from, to) = match &self.query.cursor {
                    Some(cursor) => *cursor.left.get(&r.partition)?,
                    None if self.query.from_timestamp.is_some() && r.start > r.low => {
                        return None;
                    }
                    None => (0, r.low),
                };
                let to = to.min(r.low);
                (from < to).then_some((r.partition, (from, to)))
            })
            .collect()
    }

    /// Reads `below` (offsets below each partition's earliest) from the
    /// lake, then `reader` in ascending offsets; what is left of each
    /// partition.
    fn ascending(
        &mut self,
        reader: &mut BoundedReader,
        below: BTreeMap<i32, (i64, i64)>,
    ) -> Result<BTreeMap<i32, (i64, i64)>, FetchError> {
        let mut left: BTreeMap<i32, (i64, i64)> = reader
            .ranges()
            .iter()
            .map(|r| (r.partition, (r.start, r.end)))
            .collect();
        // Partitions with records polled but not looked at: not finished.
        let mut left_behind = BTreeSet::new();
        if self.max_matches == 0 {
            self.stopped_by = Some(StoppedBy::Limit);
        }
        for (partition, span) in below {
            let Some((from, _)) = left.get_mut(&partition) else {
                continue;
            };
            if self.out_of_time() {
                *from = span.0;
                left_behind.insert(partition);
                continue;
            }
            let read = self.in_lake(partition, span, false)?;
            if !read.finished() {
                *from = read.left.0;
                left_behind.insert(partition);
                self.stopped_by.get_or_insert(StoppedBy::Time);
            }
        }
        while !self.out_of_time() {
            let room = self.max_scanned.saturating_sub(self.scanned).min(BATCH);
            if room == 0 {
                self.stopped_by = Some(StoppedBy::Records);
                break;
            }
            let max = usize::try_from(room).unwrap_or(1);
            let Some(batch) = reader.next_batch_until(max, self.deadline())? else {
                break;
            };
            for record in batch {
                let (partition, offset) = (record.partition, record.offset);
                if self.offer(record)? {
                    if let Some((from, _)) = left.get_mut(&partition) {
                        *from = offset + 1;
                    }
                } else {
                    left_behind.insert(partition);
                }
            }
        }
        let unfinished: BTreeSet<i32> = reader.unfinished().chain(left_behind).collect();
        left.retain(|p, (from, to)| unfinished.contains(p) && from < to);
        Ok(left)
    }

    /// Reads `span` of `partition` from the lake, each record offered.
    fn in_lake(
        &mut self,
        partition: i32,
        span: (i64, i64),
        descending: bool,
    ) -> Result<crate::lake::LakeRead, FetchError> {
        let Some(lake) = self.lake else {
            return Ok(crate::lake::LakeRead {
                left: (span.0, span.0),
                missing: Vec::new(),
            });
        };
        let topic = self.query.topic.as_str();
        let deadline = self.deadline();
        let mut read = lake.read(topic, partition, span, descending, deadline, |record| {
            self.offer_from(record, Source::Lake)
        })?;
        self.missing.append(&mut read.missing);
        Ok(read)
    }

    /// Newest first, after Kafka's records: `below` (offsets below each
    /// partition's earliest) from the lake, downwards, once every
    /// partition's records in Kafka were looked at. `left` (what Kafka
    /// left) gains what the lake leaves.
    fn descending_in_lake(
        &mut self,
        below: BTreeMap<i32, (i64, i64)>,
        left: &mut BTreeMap<i32, (i64, i64)>,
    ) -> Result<(), FetchError> {
        for (partition, (from, to)) in below {
            let lake_left = if !left.is_empty() || self.out_of_time() {
                (from, to)
            } else {
                let read = self.in_lake(partition, (from, to), true)?;
                if !read.finished() {
                    self.stopped_by.get_or_insert(StoppedBy::Time);
                }
                read.left
            };
            if lake_left.0 >= lake_left.1 {
                continue;
            }
            // Contiguous: the lake's offsets lie below Kafka's.
            let merged = match left.get(&partition) {
                Some((_, kafka_to)) => (lake_left.0, *kafka_to),
                None => lake_left,
            };
            left.insert(partition, merged);
        }
        Ok(())
    }

    /// Reads `ranges` newest first: windows from each partition's end
    /// downwards, each read ascending and looked at in reverse.
    fn descending(
        &mut self,
        readers: &ReaderPool,
        plan: &ReadPlan,
        ranges: &[PartitionRange],
    ) -> Result<BTreeMap<i32, (i64, i64)>, FetchError> {
        let mut left: BTreeMap<i32, (i64, i64)> = ranges
            .iter()
            .filter(|r| r.start < r.end)
            .map(|r| (r.partition, (r.start, r.end)))
            .collect();
        let plan = ReadPlan {
            start: Start::Earliest,
            ..plan.clone()
        };
        if self.max_matches == 0 {
            self.stopped_by = Some(StoppedBy::Limit);
        }
        while !left.is_empty() && !self.out_of_time() {
            let share = ROUND / i64::try_from(left.len()).unwrap_or(i64::MAX).max(1);
            let window = share.clamp(MIN_WINDOW, MAX_WINDOW);
            let windows: BTreeMap<i32, (i64, i64)> = left
                .iter()
                .map(|(p, (from, to))| (*p, ((*from).max(to - window), *to)))
                .collect();
            let deadline = self.deadline();
            let (mut read, unfinished) = readers.read_with(
                &plan,
                |all: Vec<PartitionRange>| {
                    Ok::<_, FetchError>(
                        all.into_iter()
                            .filter_map(|r| {
                                let (from, to) = windows.get(&r.partition)?;
                                // Below the partition's start now: deleted.
                                let start = (*from).max(r.low).min(*to);
                                Some(PartitionRange {
                                    start,
                                    end: (*to).min(r.high).max(start),
                                    ..r
                                })
                            })
                            .collect(),
                    )
                },
                |reader| {
                    let mut read: BTreeMap<i32, Vec<KafkaRecord>> = BTreeMap::new();
                    while let Some(batch) = reader.next_batch_until(BATCH as usize, deadline)? {
                        for record in batch {
                            read.entry(record.partition).or_default().push(record);
                        }
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            break;
                        }
                    }
                    Ok((read, reader.unfinished().collect::<BTreeSet<i32>>()))
                },
            )?;
            for (partition, (window_from, _)) in windows {
                // A window the time cut short is looked at next time.
                if unfinished.contains(&partition) {
                    self.stopped_by.get_or_insert(StoppedBy::Time);
                    continue;
                }
                let records = read.remove(&partition).unwrap_or_default();
                let mut whole = true;
                for record in records.into_iter().rev() {
                    let offset = record.offset;
                    if !self.offer(record)? {
                        whole = false;
                        break;
                    }
                    if let Some((_, to)) = left.get_mut(&partition) {
                        *to = offset;
                    }
                }
                if whole && let Some((_, to)) = left.get_mut(&partition) {
                    *to = window_from;
                }
            }
            left.retain(|_, (from, to)| from < to);
        }
        Ok(left)
    }
}
