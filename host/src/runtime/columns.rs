//! Records to and from `sluice:transform@0.2.0`'s flat buffers.
//!
//! A batch crosses into a 0.2.0 guest as a few buffers (`wit/sluice.wit`
//! says how they are laid out), which lift and lower per buffer rather than
//! per record and field. [`BatchEncoder`] writes the host's records into
//! them, reusing its buffers from one call to the next; [`outcomes`] and
//! [`output_records`] read a guest's answer back, checking every length,
//! span and byte against the contract first: the guest is not trusted, so a
//! breach is a [`GuestFailure::Contract`] naming the field, never a panic.

use std::fmt::Display;

use super::bindings::v2::{Batch, Outputs, Results, Segment};
use super::error::GuestFailure;
use crate::record::{Header, KafkaRecord, Outcome, OutputRecord};

/// Bits of a record's `presence` byte.
const HAS_KEY: u8 = 1;
const HAS_VALUE: u8 = 2;
const HAS_TIMESTAMP: u8 = 4;

/// Verdict bytes of `results.verdicts`.
const EMIT: u8 = 0;
const DROP: u8 = 1;
const FAIL: u8 = 2;

/// Writes batches into one set of buffers, kept between calls so that a
/// batch costs no allocation once the buffers have grown to its size.
pub(super) struct BatchEncoder {
    batch: Batch,
}

impl Default for BatchEncoder {
    fn default() -> Self {
        let batch = Batch {
            segments: Vec::new(),
            offsets: Vec::new(),
            timestamps: Vec::new(),
            presence: Vec::new(),
            header_counts: Vec::new(),
            header_values: Vec::new(),
            ends: Vec::new(),
            data: Vec::new(),
        };
        BatchEncoder { batch }
    }
}

impl BatchEncoder {
    /// `records` as a batch. Fails only when their bytes pass the 4 GiB a
    /// batch's `u32` spans can address (more than any guest memory holds).
    pub(super) fn encode(&mut self, records: &[KafkaRecord]) -> Result<&Batch, GuestFailure> {
        let b = &mut self.batch;
        b.segments.clear();
        b.offsets.clear();
        b.timestamps.clear();
        b.presence.clear();
        b.header_counts.clear();
        b.header_values.clear();
        b.ends.clear();
        b.data.clear();
        let headers: usize = records.iter().map(|r| r.headers.len()).sum();
        b.offsets.reserve(records.len());
        b.timestamps.reserve(records.len());
        b.presence.reserve(records.len());
        b.header_counts.reserve(records.len());
        b.header_values.reserve(headers);
        b.ends.reserve(2 * records.len() + 2 * headers);
        b.data
            .reserve(records.iter().map(KafkaRecord::payload_len).sum());
        for record in records {
            match b.segments.last_mut() {
                Some(segment)
                    if segment.partition == record.partition && segment.topic == record.topic =>
                {
                    segment.records += 1;
                }
                _ => b.segments.push(Segment {
                    topic: record.topic.clone(),
                    partition: record.partition,
                    records: 1,
                }),
            }
            b.offsets.push(record.offset);
            b.timestamps.push(record.timestamp.unwrap_or(0));
            let mut presence = 0;
            if record.key.is_some() {
                presence |= HAS_KEY;
            }
            if record.value.is_some() {
                presence |= HAS_VALUE;
            }
            if record.timestamp.is_some() {
                presence |= HAS_TIMESTAMP;
            }
            b.presence.push(presence);
            b.header_counts.push(count(record.headers.len())?);
            push_span(&mut b.ends, &mut b.data, record.key.as_deref())?;
            push_span(&mut b.ends, &mut b.data, record.value.as_deref())?;
            for header in &record.headers {
                b.header_values.push(u8::from(header.value.is_some()));
                push_span(&mut b.ends, &mut b.data, Some(header.key.as_bytes()))?;
                push_span(&mut b.ends, &mut b.data, header.value.as_deref())?;
            }
        }
        Ok(&self.batch)
    }
}

fn push_span(
    ends: &mut Vec<u32>,
    data: &mut Vec<u8>,
    bytes: Option<&[u8]>,
) -> Result<(), GuestFailure> {
    data.extend_from_slice(bytes.unwrap_or_default());
    ends.push(count(data.len())?);
    Ok(())
}

fn count(n: usize) -> Result<u32, GuestFailure> {
    u32::try_from(n).map_err(|_| {
        GuestFailure::Contract(format!(
            "the batch holds {n} bytes or headers, more than sluice:transform@0.2.0's u32 spans address"
        ))
    })
}

fn breach(what: impl Display) -> GuestFailure {
    GuestFailure::Contract(what.to_string())
}

/// A transformer's `results` for a batch of `inputs` records as one
/// outcome per record, once they keep the contract.
pub(super) fn outcomes(results: Results, inputs: usize) -> Result<Vec<Outcome>, GuestFailure> {
    let Results {
        verdicts,
        emitted,
        reasons,
        outputs,
    } = results;
    if verdicts.len() != inputs {
        return Err(breach(format_args!(
            "results.verdicts has {} entries for a batch of {inputs} records",
            verdicts.len()
        )));
    }
    if emitted.len() != inputs {
        return Err(breach(format_args!(
            "results.emitted has {} entries for a batch of {inputs} records",
            emitted.len()
        )));
    }
    let mut fails = 0usize;
    let mut emits = 0u64;
    for (i, (&verdict, &n)) in verdicts.iter().zip(&emitted).enumerate() {
        match verdict {
            EMIT => emits += u64::from(n),
            DROP | FAIL if n != 0 => {
                return Err(breach(format_args!(
                    "results.emitted[{i}] is {n}, but results.verdicts[{i}] is {verdict} \
                     (only an emit has outputs)"
                )));
            }
            DROP => {}
            FAIL => fails += 1,
            other => {
                return Err(breach(format_args!(
                    "results.verdicts[{i}] is {other}: a verdict is 0 (emit), 1 (drop) or 2 (fail)"
                )));
            }
        }
    }
    if reasons.len() != fails {
        return Err(breach(format_args!(
            "results.reasons has {} entries for {fails} fail verdicts",
            reasons.len()
        )));
    }
    let mut records = OutputReader::new(outputs, "results.outputs")?;
    if emits != records.len() as u64 {
        return Err(breach(format_args!(
            "results.emitted adds up to {emits} records, but results.outputs holds {}",
            records.len()
        )));
    }
    let mut reasons = reasons.into_iter();
    let mut outcomes = Vec::with_capacity(inputs);
    for (&verdict, &n) in verdicts.iter().zip(&emitted) {
        outcomes.push(match verdict {
            EMIT => Outcome::Emit(
                (0..n)
                    .map(|_| records.next_record())
                    .collect::<Result<_, _>>()?,
            ),
            DROP => Outcome::Drop,
            // Counted above: one reason per fail.
            _ => Outcome::Fail(reasons.next().unwrap_or_default()),
        });
    }
    Ok(outcomes)
}

/// An aggregator's `outputs` as records, once they keep the contract.
pub(super) fn output_records(outputs: Outputs) -> Result<Vec<OutputRecord>, GuestFailure> {
    let mut reader = OutputReader::new(outputs, "outputs")?;
    (0..reader.len()).map(|_| reader.next_record()).collect()
}

/// Reads `outputs` record by record, its lengths checked up front and each
/// span as it is read.
struct OutputReader {
    outputs: Outputs,
    /// The field's name in messages: `results.outputs` or `outputs`.
    name: &'static str,
    record: usize,
    header: usize,
    span: usize,
    start: usize,
}

impl OutputReader {
    fn new(outputs: Outputs, name: &'static str) -> Result<Self, GuestFailure> {
        let records = outputs.destinations.len();
        for (field, len) in [
            ("presence", outputs.presence.len()),
            ("header-counts", outputs.header_counts.len()),
        ] {
            if len != records {
                return Err(breach(format_args!(
                    "{name}.{field} has {len} entries for {records} records \
                     ({name}.destinations has {records})"
                )));
            }
        }
        let headers: u64 = outputs.header_counts.iter().map(|&n| u64::from(n)).sum();
        if headers != outputs.header_values.len() as u64 {
            return Err(breach(format_args!(
                "{name}.header-values has {} entries, but {name}.header-counts adds up to {headers}",
                outputs.header_values.len()
            )));
        }
        let spans = 2 * records as u64 + 2 * headers;
        if spans != outputs.ends.len() as u64 {
            return Err(breach(format_args!(
                "{name}.ends has {} entries, but {records} records with {headers} headers take {spans}",
                outputs.ends.len()
            )));
        }
        Ok(OutputReader {
            outputs,
            name,
            record: 0,
            header: 0,
            span: 0,
            start: 0,
        })
    }

    fn len(&self) -> usize {
        self.outputs.destinations.len()
    }

    /// The next record; called at most [`OutputReader::len`] times.
    fn next_record(&mut self) -> Result<OutputRecord, GuestFailure> {
        let name = self.name;
        let j = self.record;
        self.record += 1;
        let field = |column: &[u8]| column.get(j).copied();
        let presence = field(&self.outputs.presence)
            .ok_or_else(|| breach(format_args!("{name} has no record {j}")))?;
        if presence & !(HAS_KEY | HAS_VALUE) != 0 {
            return Err(breach(format_args!(
                "{name}.presence[{j}] is {presence}: an output's presence has bit 0 (key) \
                 and bit 1 (value) only"
            )));
        }
        let destination = self.outputs.destinations.get(j).copied().unwrap_or(0);
        let topic = match destination {
            0 => None,
            d => Some(
                self.outputs
                    .topics
                    .get(d as usize - 1)
                    .cloned()
                    .ok_or_else(|| {
                        breach(format_args!(
                            "{name}.destinations[{j}] is {d}, but {name}.topics has {} entries",
                            self.outputs.topics.len()
                        ))
                    })?,
            ),
        };
        let key = self.field(presence & HAS_KEY != 0, "key")?;
        let value = self.field(presence & HAS_VALUE != 0, "value")?;
        let headers = self.outputs.header_counts.get(j).copied().unwrap_or(0);
        let mut list = Vec::with_capacity(headers as usize);
        for _ in 0..headers {
            let h = self.header;
            self.header += 1;
            let has_value = match self.outputs.header_values.get(h).copied() {
                Some(0) => false,
                Some(1) => true,
                other => {
                    return Err(breach(format_args!(
                        "{name}.header-values[{h}] is {other:?}: 1 for a header with a value, 0 without"
                    )));
                }
            };
            let span = self.span;
            let key = self.take_span()?;
            let key = String::from_utf8(key.to_vec()).map_err(|e| {
                breach(format_args!(
                    "the name of header {h} of {name} (span {span} of {name}.ends) is not UTF-8: {e}"
                ))
            })?;
            let value = self.field(has_value, "header value")?;
            list.push(Header { key, value });
        }
        Ok(OutputRecord {
            topic,
            key,
            value,
            headers: list,
        })
    }

    /// The next span as an optional field: present, its bytes; absent, it
    /// must be empty.
    fn field(&mut self, present: bool, what: &str) -> Result<Option<Vec<u8>>, GuestFailure> {
        let (name, span, record) = (self.name, self.span, self.record.saturating_sub(1));
        let bytes = self.take_span()?;
        match present {
            true => Ok(Some(bytes.to_vec())),
            false if bytes.is_empty() => Ok(None),
            false => Err(breach(format_args!(
                "{name}.ends[{span}] gives {} bytes to the {what} of record {record}, which has none",
                bytes.len(),
            ))),
        }
    }

    /// The bytes of the next span of `ends`, checked to lie within `data`
    /// and to start where the one before ended.
    fn take_span(&mut self) -> Result<&[u8], GuestFailure> {
        let name = self.name;
        let i = self.span;
        let end = self
            .outputs
            .ends
            .get(i)
            .copied()
            .ok_or_else(|| breach(format_args!("{name}.ends has no entry {i}")))?
            as usize;
        let data = self.outputs.data.len();
        if end < self.start {
            return Err(breach(format_args!(
                "{name}.ends[{i}] is {end}, before the end of the span before it ({}): \
                 ends must not decrease",
                self.start
            )));
        }
        if end > data {
            return Err(breach(format_args!(
                "{name}.ends[{i}] is {end}, past the end of {name}.data ({data} bytes)"
            )));
        }
        let start = std::mem::replace(&mut self.start, end);
        self.span += 1;
        self.outputs
            .data
            .get(start..end)
            .ok_or_else(|| breach(format_args!("{name}.ends[{i}] is out of bounds")))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn record(topic: &str, partition: i32, offset: i64) -> KafkaRecord {
        KafkaRecord {
            topic: topic.to_owned(),
            partition,
            offset,
            timestamp: None,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_batch_is_laid_out_as_the_contract_says() {
        let mut first = record("a", 0, 5);
        first.key = Some(b"k".to_vec());
        first.value = Some(b"vv".to_vec());
        first.timestamp = Some(9);
        first.headers = vec![
            Header {
                key: "h".into(),
                value: None,
            },
            Header {
                key: "i".into(),
                value: Some(b"x".to_vec()),
            },
        ];
        let batch = [
            first,
            record("a", 0, 6),
            record("b", 0, 1),
            record("a", 0, 7),
        ];
        let mut encoder = BatchEncoder::default();
        // Twice: the reused buffers hold only the second call's batch.
        encoder.encode(&batch).unwrap();
        let b = encoder.encode(&batch).unwrap();
        let runs: Vec<_> = b
            .segments
            .iter()
            .map(|s| (s.topic.as_str(), s.partition, s.records))
            .collect();
        assert_eq!(runs, [("a", 0, 2), ("b", 0, 1), ("a", 0, 1)]);
        assert_eq!(b.offsets, [5, 6, 1, 7]);
        assert_eq!(b.timestamps, [9, 0, 0, 0]);
        assert_eq!(b.presence, [7, 0, 0, 0]);
        assert_eq!(b.header_counts, [2, 0, 0, 0]);
        assert_eq!(b.header_values, [0, 1]);
        assert_eq!(b.ends, [1, 3, 4, 4, 5, 6, 6, 6, 6, 6, 6, 6]);
        assert_eq!(b.data, b"kvvhix");
    }

    fn outputs(records: usize) -> Outputs {
        Outputs {
            topics: vec!["t".into()],
            destinations: vec![1; records],
            presence: vec![HAS_VALUE; records],
            header_counts: vec![0; records],
            header_values: Vec::new(),
            ends: (0..records as u32).flat_map(|i| [i, i + 1]).collect(),
            data: vec![b'v'; records],
        }
    }

    #[test]
    fn a_well_formed_answer_reads_back() {
        let results = Results {
            verdicts: vec![EMIT, DROP, FAIL, EMIT],
            emitted: vec![2, 0, 0, 0],
            reasons: vec!["bad".into()],
            outputs: outputs(2),
        };
        let out = OutputRecord {
            topic: Some("t".into()),
            key: None,
            value: Some(b"v".to_vec()),
            headers: Vec::new(),
        };
        assert_eq!(
            outcomes(results, 4).unwrap(),
            [
                Outcome::Emit(vec![out.clone(), out]),
                Outcome::Drop,
                Outcome::Fail("bad".into()),
                Outcome::Emit(Vec::new()),
            ]
        );
    }

    #[test]
    fn an_emit_count_on_a_drop_is_refused() {
        let results = Results {
            verdicts: vec![DROP],
            emitted: vec![1],
            reasons: Vec::new(),
            outputs: outputs(1),
        };
        let Err(GuestFailure::Contract(message)) = outcomes(results, 1) else {
            panic!("taken");
        };
        assert!(message.contains("results.emitted[0] is 1"), "{message}");
    }

    fn small<T: Arbitrary>() -> impl Strategy<Value = Vec<T>> {
        proptest::collection::vec(any::<T>(), 0..6)
    }

    fn any_outputs() -> impl Strategy<Value = Outputs> {
        (
            proptest::collection::vec("[a-z]{0,2}", 0..3),
            small::<u32>().prop_map(|v| v.into_iter().map(|d| d % 4).collect()),
            small::<u8>().prop_map(|v| v.into_iter().map(|p| p % 5).collect()),
            small::<u32>().prop_map(|v| v.into_iter().map(|n| n % 3).collect()),
            small::<u8>().prop_map(|v| v.into_iter().map(|h| h % 3).collect()),
            proptest::collection::vec(0..12u32, 0..16),
            proptest::collection::vec(any::<u8>(), 0..12),
        )
            .prop_map(
                |(topics, destinations, presence, header_counts, header_values, ends, data)| {
                    Outputs {
                        topics,
                        destinations,
                        presence,
                        header_counts,
                        header_values,
                        ends,
                        data,
                    }
                },
            )
    }

    proptest! {
        /// Whatever a guest answers, the decoder gives outcomes or a
        /// contract failure: small ranges, so that well-formed answers
        /// and near misses both come up.
        #[test]
        fn arbitrary_answers_never_panic(
            verdicts in small::<u8>().prop_map(|v| v.into_iter().map(|b| b % 4).collect::<Vec<_>>()),
            emitted in small::<u32>().prop_map(|v| v.into_iter().map(|n| n % 3).collect::<Vec<_>>()),
            reasons in proptest::collection::vec("[a-z]{0,3}", 0..3),
            outputs in any_outputs(),
            inputs in 0..6usize,
        ) {
            let for_aggregate = outputs.clone();
            let results = Results { verdicts, emitted, reasons, outputs };
            match outcomes(results, inputs) {
                Ok(outcomes) => prop_assert_eq!(outcomes.len(), inputs),
                Err(failure) => prop_assert!(matches!(failure, GuestFailure::Contract(_))),
            }
            let _ = output_records(for_aggregate);
        }
    }
}
