//! Records read in place from a batch's buffers (`wit/sluice.wit` says how
//! they are laid out): a [`Record`] borrows its topic, key, value and
//! headers from the batch, so reading one allocates nothing.
//!
//! The host writes the buffers and keeps the contract; should a buffer
//! still be short, the fields past its end read as empty rather than
//! panicking.

use crate::owned::{Header, KafkaRecord};
use crate::raw;

const HAS_KEY: u8 = 1;
const HAS_VALUE: u8 = 2;
const HAS_TIMESTAMP: u8 = 4;

/// A batch's records, in order.
#[derive(Clone, Copy)]
pub struct Records<'a> {
    batch: &'a raw::Batch,
}

impl<'a> Records<'a> {
    pub fn new(batch: &'a raw::Batch) -> Self {
        Records { batch }
    }

    pub fn len(&self) -> usize {
        self.batch.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.offsets.is_empty()
    }

    pub fn iter(&self) -> RecordIter<'a> {
        RecordIter {
            batch: self.batch,
            index: 0,
            span: 0,
            header: 0,
            start: 0,
            next_segment: 0,
            topic: "",
            partition: -1,
            left_in_segment: 0,
        }
    }

    /// Each record copied into an owned [`KafkaRecord`].
    pub fn to_owned_records(&self) -> Vec<KafkaRecord> {
        self.iter().map(|r| r.to_owned_record()).collect()
    }
}

impl<'a> IntoIterator for &Records<'a> {
    type Item = Record<'a>;
    type IntoIter = RecordIter<'a>;
    fn into_iter(self) -> RecordIter<'a> {
        self.iter()
    }
}

/// Walks a batch's columns in step: one record's spans after another's.
pub struct RecordIter<'a> {
    batch: &'a raw::Batch,
    index: usize,
    /// The next entry of `ends`, and of `header-values`.
    span: usize,
    header: usize,
    /// Where the next span starts in `data`.
    start: u32,
    next_segment: usize,
    topic: &'a str,
    partition: i32,
    left_in_segment: u32,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let b = self.batch;
        let i = self.index;
        let offset = *b.offsets.get(i)?;
        self.index += 1;
        while self.left_in_segment == 0 {
            let Some(segment) = b.segments.get(self.next_segment) else {
                break;
            };
            self.next_segment += 1;
            self.topic = &segment.topic;
            self.partition = segment.partition;
            self.left_in_segment = segment.records;
        }
        self.left_in_segment = self.left_in_segment.saturating_sub(1);
        let presence = b.presence.get(i).copied().unwrap_or(0);
        let headers = b.header_counts.get(i).copied().unwrap_or(0) as usize;
        let key = self.take_span();
        let value = self.take_span();
        let header_ends = self.span..self.span.saturating_add(2 * headers);
        let headers = Headers {
            data: &b.data,
            ends: b.ends.get(header_ends).unwrap_or_default(),
            values: b
                .header_values
                .get(self.header..self.header.saturating_add(headers))
                .unwrap_or_default(),
            start: self.start,
        };
        self.span = self.span.saturating_add(2 * headers.len());
        self.header = self.header.saturating_add(headers.len());
        self.start = headers.ends.last().copied().unwrap_or(self.start);
        Some(Record {
            topic: self.topic,
            partition: self.partition,
            offset,
            timestamp: (presence & HAS_TIMESTAMP != 0)
                .then(|| b.timestamps.get(i).copied().unwrap_or(0)),
            key: (presence & HAS_KEY != 0).then_some(key),
            value: (presence & HAS_VALUE != 0).then_some(value),
            headers,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch.offsets.len().saturating_sub(self.index);
        (left, Some(left))
    }
}

impl<'a> RecordIter<'a> {
    fn take_span(&mut self) -> &'a [u8] {
        let end = self
            .batch
            .ends
            .get(self.span)
            .copied()
            .unwrap_or(self.start);
        self.span += 1;
        let start = std::mem::replace(&mut self.start, end);
        bytes(&self.batch.data, start, end)
    }
}

fn bytes(data: &[u8], start: u32, end: u32) -> &[u8] {
    data.get(start as usize..end as usize).unwrap_or_default()
}

/// One record of a batch, borrowed from its buffers.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: Headers<'a>,
}

impl<'a> Record<'a> {
    pub fn topic(&self) -> &'a str {
        self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Milliseconds since the Unix epoch (UTC), when the record has one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    pub fn headers(&self) -> Headers<'a> {
        self.headers
    }

    pub fn to_owned_record(&self) -> KafkaRecord {
        KafkaRecord {
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: self
                .headers
                .iter()
                .map(|(key, value)| Header {
                    key: key.to_owned(),
                    value: value.map(<[u8]>::to_vec),
                })
                .collect(),
        }
    }
}

/// A record's headers, in order: each a name and, when it has one, a value.
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    data: &'a [u8],
    /// Two entries per header: the end of its name, then of its value.
    pub(crate) ends: &'a [u32],
    pub(crate) values: &'a [u8],
    /// Where the first header's name starts in `data`.
    pub(crate) start: u32,
}

impl<'a> Headers<'a> {
    pub fn len(&self) -> usize {
        self.values.len().min(self.ends.len() / 2)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of the first header named `name`: `None` when there is no
    /// such header, `Some(None)` when it has no value.
    pub fn get(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The bytes all the headers take in the batch's `data`, names and
    /// values, in order: copied whole when an output keeps them.
    pub(crate) fn region(&self) -> &'a [u8] {
        let end = self.ends.last().copied().unwrap_or(self.start);
        bytes(self.data, self.start, end)
    }

    /// Each header's name and value. A name that is not UTF-8 (which the
    /// host never sends: Kafka header names are strings) reads as "".
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        let data = self.data;
        let mut start = self.start;
        self.ends
            .chunks_exact(2)
            .zip(self.values)
            .map(move |(pair, &has_value)| {
                let (name_end, value_end) = (pair[0], pair[1]);
                let name = std::str::from_utf8(bytes(data, start, name_end)).unwrap_or_default();
                let value = bytes(data, name_end, value_end);
                start = value_end;
                (name, (has_value != 0).then_some(value))
            })
    }
}
