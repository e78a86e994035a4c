//! Answers written straight into the buffers the host reads
//! (`wit/sluice.wit`'s `results` and `outputs`): one verdict byte per input
//! record, output records' bytes appended to one buffer.

use crate::owned::{Outcome, OutputRecord};
use crate::raw;
use crate::views::Record;

const HAS_KEY: u8 = 1;
const HAS_VALUE: u8 = 2;

const EMIT: u8 = 0;
const DROP: u8 = 1;
const FAIL: u8 = 2;

/// Records a transform asks the host to produce.
pub struct Outputs {
    raw: raw::Outputs,
}

impl Default for Outputs {
    fn default() -> Self {
        Self::new()
    }
}

impl Outputs {
    pub fn new() -> Self {
        Outputs {
            raw: raw::Outputs {
                topics: Vec::new(),
                destinations: Vec::new(),
                presence: Vec::new(),
                header_counts: Vec::new(),
                header_values: Vec::new(),
                ends: Vec::new(),
                data: Vec::new(),
            },
        }
    }

    fn with_capacity(records: usize) -> Self {
        let mut outputs = Self::new();
        outputs.raw.destinations.reserve(records);
        outputs.raw.presence.reserve(records);
        outputs.raw.header_counts.reserve(records);
        outputs.raw.ends.reserve(2 * records);
        outputs
    }

    /// How many records have been written.
    pub fn len(&self) -> usize {
        self.raw.destinations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.destinations.is_empty()
    }

    /// A record to `topic` (one of the pipeline's declared outputs; `None`:
    /// every declared output) with these fields and headers.
    pub fn push(
        &mut self,
        topic: Option<&str>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) {
        self.start(topic, key, value);
        self.raw.header_counts.push(headers.len() as u32);
        for (name, value) in headers {
            self.raw.header_values.push(u8::from(value.is_some()));
            self.span(name.as_bytes());
            self.span(value.unwrap_or_default());
        }
    }

    /// A record to `topic` with `value`, keeping `input`'s key and headers:
    /// what most transforms emit. The headers are copied as one block.
    pub fn push_derived(&mut self, topic: Option<&str>, input: &Record<'_>, value: &[u8]) {
        self.start(topic, input.key(), Some(value));
        self.push_headers_of(input);
    }

    /// `input`'s headers, copied as one block.
    fn push_headers_of(&mut self, input: &Record<'_>) {
        let headers = input.headers();
        self.raw.header_counts.push(headers.len() as u32);
        self.raw
            .header_values
            .extend_from_slice(&headers.values[..headers.len()]);
        let from = headers.start;
        let to = self.raw.data.len() as u32;
        self.raw.data.extend_from_slice(headers.region());
        self.raw.ends.extend(
            headers.ends[..2 * headers.len()]
                .iter()
                .map(|&end| end.wrapping_sub(from).wrapping_add(to)),
        );
    }

    /// As [`Outputs::push_derived`], with the value `write` appends to the
    /// buffer it is given (the outputs' own: no copy). When `write` fails,
    /// nothing is written and its error is returned.
    pub fn push_derived_with<E>(
        &mut self,
        topic: Option<&str>,
        input: &Record<'_>,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let (data, ends) = (self.raw.data.len(), self.raw.ends.len());
        let destination = self.destination(topic);
        let key = input.key();
        self.span(key.unwrap_or_default());
        if let Err(e) = write(&mut self.raw.data) {
            self.raw.data.truncate(data);
            self.raw.ends.truncate(ends);
            return Err(e);
        }
        self.raw.ends.push(self.raw.data.len() as u32);
        self.raw.destinations.push(destination);
        self.raw
            .presence
            .push(HAS_VALUE | if key.is_some() { HAS_KEY } else { 0 });
        self.push_headers_of(input);
        Ok(())
    }

    /// An owned record, as [`crate::Aggregate`]s and [`crate::Transform`]s
    /// give them.
    pub fn push_owned(&mut self, record: OutputRecord) {
        self.start(
            record.topic.as_deref(),
            record.key.as_deref(),
            record.value.as_deref(),
        );
        self.raw.header_counts.push(record.headers.len() as u32);
        for header in &record.headers {
            self.raw
                .header_values
                .push(u8::from(header.value.is_some()));
            self.span(header.key.as_bytes());
            self.span(header.value.as_deref().unwrap_or_default());
        }
    }

    /// The record's destination, presence, key and value.
    fn start(&mut self, topic: Option<&str>, key: Option<&[u8]>, value: Option<&[u8]>) {
        let destination = self.destination(topic);
        self.raw.destinations.push(destination);
        let mut presence = 0;
        if key.is_some() {
            presence |= HAS_KEY;
        }
        if value.is_some() {
            presence |= HAS_VALUE;
        }
        self.raw.presence.push(presence);
        self.span(key.unwrap_or_default());
        self.span(value.unwrap_or_default());
    }

    fn span(&mut self, bytes: &[u8]) {
        self.raw.data.extend_from_slice(bytes);
        self.raw.ends.push(self.raw.data.len() as u32);
    }

    /// 0 for every declared output, else the topic's place in `topics`
    /// (from 1), added the first time it is named.
    fn destination(&mut self, topic: Option<&str>) -> u32 {
        let Some(topic) = topic else { return 0 };
        let topics = &mut self.raw.topics;
        let at = match topics.iter().position(|t| t == topic) {
            Some(at) => at,
            None => {
                topics.push(topic.to_owned());
                topics.len() - 1
            }
        };
        at as u32 + 1
    }

    pub fn into_raw(self) -> raw::Outputs {
        self.raw
    }
}

/// A transformer's answer to a batch, written one input record at a time,
/// in input order: exactly one of [`Results::emit`], [`Results::emit_to`],
/// [`Results::emit_with`], [`Results::drop_record`] or [`Results::fail`] per
/// record.
pub struct Results {
    verdicts: Vec<u8>,
    emitted: Vec<u32>,
    reasons: Vec<String>,
    outputs: Outputs,
}

impl Results {
    /// Room for an answer about the size of `batch` (one output per
    /// record, of about its size): most transforms' answer is, and growing
    /// a buffer of a large batch by doubling copies it over and over.
    pub fn for_batch(batch: &raw::Batch) -> Self {
        let records = batch.offsets.len();
        let mut results = Self::with_capacity(records);
        let raw = &mut results.outputs.raw;
        raw.ends.reserve(batch.ends.len());
        raw.header_values.reserve(batch.header_values.len());
        raw.data.reserve(batch.data.len() + 64 * records);
        results
    }

    pub fn with_capacity(records: usize) -> Self {
        Results {
            verdicts: Vec::with_capacity(records),
            emitted: Vec::with_capacity(records),
            reasons: Vec::new(),
            outputs: Outputs::with_capacity(records),
        }
    }

    /// The input becomes one record for every declared output, with
    /// `value` and the input's key and headers.
    pub fn emit(&mut self, input: &Record<'_>, value: &[u8]) {
        self.outputs.push_derived(None, input, value);
        self.verdict(EMIT, 1);
    }

    /// As [`Results::emit`], to `topic` (one of the pipeline's declared
    /// outputs) only.
    pub fn emit_to(&mut self, topic: &str, input: &Record<'_>, value: &[u8]) {
        self.outputs.push_derived(Some(topic), input, value);
        self.verdict(EMIT, 1);
    }

    /// The input becomes one record for every declared output with the
    /// value `write` appends to the buffer it is given (the answer's own
    /// buffer: no copy), keeping the input's key and headers; when `write`
    /// fails, the input fails with its error instead.
    pub fn emit_written<E: std::fmt::Display>(
        &mut self,
        input: &Record<'_>,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) {
        match self.outputs.push_derived_with(None, input, write) {
            Ok(()) => self.verdict(EMIT, 1),
            Err(e) => self.fail(e.to_string()),
        }
    }

    /// The input becomes the records `write` adds (zero or more).
    pub fn emit_with(&mut self, write: impl FnOnce(&mut Outputs)) {
        let before = self.outputs.len();
        write(&mut self.outputs);
        let emitted = self.outputs.len() - before;
        self.verdict(EMIT, emitted as u32);
    }

    /// Nothing to produce; the input is done.
    pub fn drop_record(&mut self) {
        self.verdict(DROP, 0);
    }

    /// The input is bad: the host sends it to the dead-letter topic with
    /// `reason` and goes on with the rest of the batch.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.reasons.push(reason.into());
        self.verdict(FAIL, 0);
    }

    fn verdict(&mut self, verdict: u8, emitted: u32) {
        self.verdicts.push(verdict);
        self.emitted.push(emitted);
    }

    /// Owned outcomes, one per input record, written as results.
    pub fn from_outcomes(outcomes: Vec<Outcome>) -> Self {
        let mut results = Results::with_capacity(outcomes.len());
        for outcome in outcomes {
            match outcome {
                Outcome::Emit(records) => results.emit_with(|outputs| {
                    for record in records {
                        outputs.push_owned(record);
                    }
                }),
                Outcome::Drop => results.drop_record(),
                Outcome::Fail(reason) => results.fail(reason),
            }
        }
        results
    }

    pub fn into_raw(self) -> raw::Results {
        raw::Results {
            verdicts: self.verdicts,
            emitted: self.emitted,
            reasons: self.reasons,
            outputs: self.outputs.into_raw(),
        }
    }
}
