//! W3C Trace Context across Kafka: every record a pipeline produces carries
//! a `traceparent` header, a child of the input's when the input had one
//! (so a trace started by an HTTP call or an upstream producer goes on
//! through Sluice), else the root of a new trace. Ids are derived from the
//! record's coordinates and the transform's version rather than drawn at
//! random: a record processed twice (at-least-once) gets the same span, and
//! a record's trace can be found from where it was read.

use sha2::{Digest, Sha256};

use crate::record::{Header, KafkaRecord};

pub const TRACEPARENT: &str = "traceparent";

/// `a\nb` in decimal, written into `buffer` (48 bytes hold any two i64).
fn decimal_pair(buffer: &mut [u8; 48], a: i64, b: i64) -> &[u8] {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    // Cannot fail: two i64 and a newline need at most 41 bytes.
    let _ = write!(cursor, "{a}\n{b}");
    let end = usize::try_from(cursor.position()).unwrap_or(0);
    &buffer[..end]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl TraceContext {
    /// `00-<trace id>-<parent id>-<flags>`; `None` for anything the
    /// specification says to ignore (bad shape, version ff, zero ids).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // A future version may add fields after these four; version 00 may not.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        let lower = |s: &str| !s.bytes().any(|b| b.is_ascii_uppercase());
        if !(lower(trace) && lower(span) && lower(flags)) {
            return None;
        }
        hex::decode_to_slice(trace, &mut trace_id).ok()?;
        hex::decode_to_slice(span, &mut span_id).ok()?;
        let mut flag_byte = [0u8; 1];
        hex::decode_to_slice(flags, &mut flag_byte).ok()?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            sampled: flag_byte[0] & 1 == 1,
        })
    }

    pub fn header_value(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            u8::from(self.sampled)
        )
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
            None => {
                let mut hash = Sha256::new_with_prefix(b"trace\n");
                seed.iter().for_each(|part| hash.update(part));
                let digest = hash.finalize();
                let mut id = [0u8; 16];
                id.copy_from_slice(&digest[..16]);
                (id, true)
            }
        };
        let mut trace_hex = [0u8; 32];
        // 16 bytes always encode to 32 hex digits.
        let _ = hex::encode_to_slice(trace_id, &mut trace_hex);
        let mut hash = Sha256::new_with_prefix(b"span\n");
        hash.update(trace_hex);
        hash.update(b"\n");
        seed.iter().for_each(|part| hash.update(part));
        let digest = hash.finalize();
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&digest[..8]);
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
