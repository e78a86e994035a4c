//! W3C Trace Context across Kafka: every record a pipeline produces carries
//! a `traceparent` header, a child of the input's when the input had one
//! (so a trace started by an HTTP call or an upstream producer goes on
//! through Sluice), else the root of a new trace. Ids are derived from the
//! record's coordinates and the transform's version rather than drawn at
//! random: a record processed twice (at-least-once) gets the same span, and
//! a record's trace can be found from where it was read.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
#[cfg(test)]
use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use crate::record::{Header, KafkaRecord};

pub const TRACEPARENT: &str = "traceparent";

/// XXH3 seeds keeping trace ids and span ids of the same seed apart.
const TRACE_SEED: u64 = 1;
const SPAN_SEED: u64 = 2;

/// XXH3-128 of `prefix` and the `parts` one after the other. Ids need to be
/// stable (a record processed twice gets the same span) and unique among a
/// trace's spans and across traces, not unguessable: nothing is keyed on
/// them. XXH3's output is fixed by its specification, on every platform.
fn hash(seed: u64, prefix: &[u8], parts: &[&[u8]]) -> u128 {
    use twox_hash::XxHash3_128;
    // A record's seed (topic, partition, offset, `name@version`) fits on
    // the stack, where the one-shot hash is fastest; anything longer is
    // streamed, which XXH3 defines to give the same hash.
    let mut buffer = [0u8; 256];
    let mut length = 0;
    for part in std::iter::once(prefix).chain(parts.iter().copied()) {
        let Some(room) = buffer.get_mut(length..length + part.len()) else {
            let mut hasher = XxHash3_128::with_seed(seed);
            hasher.write(prefix);
            parts.iter().for_each(|part| hasher.write(part));
            return hasher.finish_128();
        };
        room.copy_from_slice(part);
        length += part.len();
    }
    XxHash3_128::oneshot_with_seed(seed, buffer.get(..length).unwrap_or_default())
}

/// `a\nb` in decimal, written into `buffer` (48 bytes hold any two i64).
fn decimal_pair(buffer: &mut [u8; 48], a: i64, b: i64) -> &[u8] {
    let mut first = itoa::Buffer::new();
    let mut second = itoa::Buffer::new();
    let (a, b) = (first.format(a).as_bytes(), second.format(b).as_bytes());
    let (head, rest) = buffer.split_at_mut(a.len());
    head.copy_from_slice(a);
    let (newline, tail) = rest.split_at_mut(1);
    newline.copy_from_slice(b"\n");
    // Cannot fail: an i64 is at most 20 characters.
    if let Some(tail) = tail.get_mut(..b.len()) {
        tail.copy_from_slice(b);
    }
    &buffer[..a.len() + 1 + b.len()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl TraceContext {
    /// `00-<trace id>-<parent id>-<flags>`; `None` for anything the
    /// specification says to ignore (bad shape, version ff, zero ids), as
    /// OpenTelemetry's W3C propagator reads it.
    pub fn parse(text: &str) -> Option<Self> {
        // The propagator takes ids of the wrong length (a 31-digit trace id
        // parses as a number); the specification's field widths come first.
        let mut fields = text.trim().split('-');
        let widths = [2, 32, 16, 2];
        let shaped = widths.iter().all(|width| {
            fields.next().is_some_and(|f| {
                f.len() == *width
                    && f.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
        });
        if !shaped {
            return None;
        }
        let carrier = std::collections::HashMap::from([(TRACEPARENT.to_owned(), text.to_owned())]);
        let context = TraceContextPropagator::new().extract(&carrier);
        let span = context.span().span_context().clone();
        span.is_valid().then(|| TraceContext {
            trace_id: span.trace_id().to_bytes(),
            span_id: span.span_id().to_bytes(),
            sampled: span.is_sampled(),
        })
    }

    /// The `traceparent` header value: `00-<trace id>-<span id>-<flags>`,
    /// lower-case hex, as OpenTelemetry's propagator writes it (a test holds
    /// the two equal). Written here because it runs for every record a
    /// pipeline produces: the propagator builds a map and a span context
    /// for each, a tenth of the enrichment's host time under `perf`.
    pub fn header_value(&self) -> String {
        let mut text = [0u8; 55];
        let (version, rest) = text.split_at_mut(3);
        version.copy_from_slice(b"00-");
        let (trace, rest) = rest.split_at_mut(32);
        let (dash, rest) = rest.split_at_mut(1);
        let (span, rest) = rest.split_at_mut(16);
        // Exact lengths: 16 and 8 bytes are 32 and 16 hex digits.
        let _ = hex::encode_to_slice(self.trace_id, trace);
        let _ = hex::encode_to_slice(self.span_id, span);
        dash.copy_from_slice(b"-");
        rest.copy_from_slice(if self.sampled { b"-01" } else { b"-00" });
        // Always ASCII.
        std::str::from_utf8(&text)
            .map(str::to_owned)
            .unwrap_or_default()
    }

    /// What OpenTelemetry's W3C propagator writes for this context.
    #[cfg(test)]
    fn propagator_value(&self) -> String {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let span = SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            flags,
            false,
            TraceState::default(),
        );
        let mut carrier = std::collections::HashMap::new();
        TraceContextPropagator::new()
            .inject_context(&Context::new().with_remote_span_context(span), &mut carrier);
        carrier.remove(TRACEPARENT).unwrap_or_default()
    }

    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex::encode(self.span_id)
    }

    /// The span of `stage` (e.g. `name@version`) processing `input`: a
    /// child of the input's context, or the root of a new, sampled trace.
    pub fn for_processing(input: &KafkaRecord, stage: &str) -> Self {
        let parent = input
            .headers
            .iter()
            .rev()
            .find(|h| h.key == TRACEPARENT)
            .and_then(|h| std::str::from_utf8(h.value.as_deref()?).ok())
            .and_then(TraceContext::parse);
        // The seed is `topic\npartition\noffset\nstage`, fed to the hash in
        // parts: this runs for every record routed, and needs no allocation.
        let mut numbers = [0u8; 48];
        let numbers = decimal_pair(&mut numbers, input.partition.into(), input.offset);
        TraceContext::derive_from(
            parent,
            &[
                input.topic.as_bytes(),
                b"\n",
                numbers,
                b"\n",
                stage.as_bytes(),
            ],
        )
    }

    /// A child of `parent` (or a new, sampled trace) whose ids are derived
    /// from `seed`: the same seed under the same parent gives the same span.
    pub fn derive(parent: Option<TraceContext>, seed: &str) -> Self {
        Self::derive_from(parent, &[seed.as_bytes()])
    }

    /// As [`TraceContext::derive`], the seed given in parts.
    fn derive_from(parent: Option<TraceContext>, seed: &[&[u8]]) -> Self {
        let (trace_id, sampled) = match parent {
            Some(p) => (p.trace_id, p.sampled),
            // W3C ids are never all zeros.
            None => (hash(TRACE_SEED, &[], seed).max(1).to_be_bytes(), true),
        };
        // The span id is the hash's high half.
        let span = (hash(SPAN_SEED, &trace_id, seed) >> 64) as u64;
        let span_id = span.max(1).to_be_bytes();
        TraceContext {
            trace_id,
            span_id,
            sampled,
        }
    }

    /// Sets this context as the `traceparent` of `headers`, replacing any.
    pub fn stamp(&self, headers: &mut Vec<Header>) {
        headers.retain(|h| h.key != TRACEPARENT);
        headers.push(Header {
            key: TRACEPARENT.to_owned(),
            value: Some(self.header_value().into_bytes()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn record(traceparent: Option<&str>) -> KafkaRecord {
        let mut record = KafkaRecord::from_value("in", 42, b"{}".to_vec());
        if let Some(value) = traceparent {
            record.headers.push(Header {
                key: TRACEPARENT.into(),
                value: Some(value.as_bytes().to_vec()),
            });
        }
        record
    }

    #[test]
    fn the_specification_examples_parse_and_print_back() {
        let context = TraceContext::parse(PARENT).unwrap();
        assert!(context.sampled);
        assert_eq!(context.header_value(), PARENT);
        let unsampled = PARENT.replace("-01", "-00");
        assert!(!TraceContext::parse(&unsampled).unwrap().sampled);
    }

    #[test]
    fn what_the_specification_says_to_ignore_is_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
        assert!(
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some(),
            "a later version may add fields"
        );
    }

    #[test]
    fn processing_continues_the_input_trace_with_a_new_span() {
        let parent = TraceContext::parse(PARENT).unwrap();
        let child = TraceContext::for_processing(&record(Some(PARENT)), "t@abc");
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        assert_eq!(
            child,
            TraceContext::for_processing(&record(Some(PARENT)), "t@abc"),
            "the same record and stage give the same span"
        );
        assert_ne!(
            child.span_id,
            TraceContext::for_processing(&record(Some(PARENT)), "t@def").span_id
        );
    }

    #[test]
    fn an_input_without_a_valid_context_starts_a_trace() {
        let root = TraceContext::for_processing(&record(None), "t@abc");
        assert!(root.sampled);
        assert_eq!(
            root,
            TraceContext::for_processing(&record(Some("garbage")), "t@abc")
        );
        let other = KafkaRecord::from_value("in", 43, b"{}".to_vec());
        assert_ne!(
            root.trace_id,
            TraceContext::for_processing(&other, "t@abc").trace_id
        );
    }

    proptest::proptest! {
        #[test]
        fn the_header_is_what_the_propagator_writes(
            trace_id in proptest::array::uniform16(proptest::num::u8::ANY),
            span_id in proptest::array::uniform8(proptest::num::u8::ANY),
            sampled in proptest::bool::ANY,
        ) {
            let context = TraceContext { trace_id, span_id, sampled };
            let valid = trace_id != [0; 16] && span_id != [0; 8];
            // The propagator writes nothing for an invalid (all-zero) id;
            // Sluice never derives one but writes it the same way.
            if valid {
                proptest::prop_assert_eq!(context.header_value(), context.propagator_value());
                proptest::prop_assert_eq!(TraceContext::parse(&context.header_value()), Some(context));
            }
        }
    }

    /// The ids are part of what a pipeline writes: the same record and
    /// transform version give the same `traceparent` from one release to
    /// the next, so a record read again after an upgrade keeps its span.
    #[test]
    fn ids_are_the_same_from_one_release_to_the_next() {
        let root = TraceContext::for_processing(&record(None), "t@abc");
        assert_eq!(
            root.header_value(),
            "00-4e81ac9cfcadb09e8a7f93317da7b3f2-55f628cbb9c51889-01"
        );
        let child = TraceContext::for_processing(&record(Some(PARENT)), "t@abc");
        assert_eq!(
            child.header_value(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-f251fea4b1e4401e-01"
        );
    }

    #[test]
    fn a_seed_too_long_for_the_stack_hashes_as_one_piece() {
        let topic = "t".repeat(300);
        let parts: [&[u8]; 3] = [topic.as_bytes(), b"\n", b"stage"];
        let whole = [topic.as_bytes(), b"\n", b"stage"].concat();
        assert_eq!(
            hash(SPAN_SEED, b"prefix", &parts),
            twox_hash::XxHash3_128::oneshot_with_seed(
                SPAN_SEED,
                &[&b"prefix"[..], &whole].concat()
            )
        );
        let short: [&[u8]; 2] = [b"in\n", b"0\n42"];
        assert_eq!(
            hash(TRACE_SEED, &[], &short),
            twox_hash::XxHash3_128::oneshot_with_seed(TRACE_SEED, b"in\n0\n42")
        );
    }

    #[test]
    fn every_record_of_a_topic_gets_its_own_trace_and_span() {
        let mut traces = std::collections::HashSet::new();
        let mut spans = std::collections::HashSet::new();
        for partition in 0..4 {
            for offset in 0..25_000 {
                let mut input = KafkaRecord::from_value("in", offset, b"{}".to_vec());
                input.partition = partition;
                let context = TraceContext::for_processing(&input, "t@abc");
                assert!(traces.insert(context.trace_id));
                assert!(spans.insert(context.span_id));
            }
        }
        let mut numbers = [0u8; 48];
        assert_eq!(
            decimal_pair(&mut numbers, i64::MIN, i64::MAX),
            format!("{}\n{}", i64::MIN, i64::MAX).as_bytes()
        );
    }

    #[test]
    fn stamping_replaces_an_earlier_traceparent() {
        let mut headers = record(Some(PARENT)).headers;
        let child = TraceContext::for_processing(&record(Some(PARENT)), "t@abc");
        child.stamp(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(
            headers[0].value.as_deref(),
            Some(child.header_value().as_bytes())
        );
    }
}
