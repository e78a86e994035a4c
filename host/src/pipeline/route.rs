//! Where each outcome goes: emitted records to their declared output topics,
//! failures (declared by the guest or caused by it) to the dead-letter topic.

use super::dead_letter::{self, stamp};
use super::header;
use crate::kafka::ProduceRecord;
use crate::record::{Header, KafkaRecord, Outcome};
use crate::runtime::{GuestError, Transform};
use crate::telemetry::TraceContext;

/// The topics a run may write to.
#[derive(Debug, Clone)]
pub struct Routing {
    pub outputs: Vec<String>,
    pub dead_letter: String,
}

/// What became of one input record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    Emitted(usize),
    Dropped,
    DeadLettered,
}

impl Routing {
    /// Appends the records `result` asks for to `out`.
    pub fn route(
        &self,
        transform: &Transform,
        input: &KafkaRecord,
        result: Result<Outcome, GuestError>,
        out: &mut Vec<ProduceRecord>,
    ) -> Routed {
        let outputs = match result {
            Ok(Outcome::Emit(outputs)) => outputs,
            Ok(Outcome::Drop) => return Routed::Dropped,
            Ok(Outcome::Fail(reason)) => {
                return self.dead_letter(transform, input, "rejected", &reason, out);
            }
            Err(error) => {
                return self.dead_letter(
                    transform,
                    input,
                    error.failure.kind(),
                    &error.to_string(),
                    out,
                );
            }
        };
        if let Some(bad) = outputs
            .iter()
            .filter_map(|o| o.topic.as_deref())
            .find(|t| !self.outputs.iter().any(|declared| declared == t))
        {
            let reason = format!(
                "emitted to topic `{bad}`, which is not one of the declared outputs ({})",
                self.outputs.join(", ")
            );
            return self.dead_letter(transform, input, "contract", &reason, out);
        }
        let mut stage = stamp(transform);
        let trace = TraceContext::for_processing(input, &stage);
        processed(input, &stage, &trace, None);
        let mut traceparent = trace.header_value();
        let before = out.len();
        let last_output = outputs.len().saturating_sub(1);
        for (index, mut output) in outputs.into_iter().enumerate() {
            // The two headers every output carries, made once per input
            // record: the last output takes them, earlier ones get copies.
            let (stage, traceparent) = if index == last_output {
                (std::mem::take(&mut stage), std::mem::take(&mut traceparent))
            } else {
                (stage.clone(), traceparent.clone())
            };
            // As `TraceContext::stamp`, which the dead letters use, the
            // traceparent replacing any the guest wrote.
            output.headers.retain(|h| h.key != super::TRACEPARENT);
            output.headers.reserve(2);
            output.headers.push(Header {
                key: header::TRANSFORM.to_owned(),
                value: Some(stage.into_bytes()),
            });
            output.headers.push(Header {
                key: super::TRACEPARENT.to_owned(),
                value: Some(traceparent.into_bytes()),
            });
            let named = output.topic.take();
            // Borrowed, not cloned: this runs for every record emitted.
            let topics = named.as_slice();
            let topics = if topics.is_empty() {
                self.outputs.as_slice()
            } else {
                topics
            };
            // Every topic but the last gets a copy; the last takes the record,
            // so the common single-output case copies no value.
            let Some((last, others)) = topics.split_last() else {
                out.truncate(before);
                let reason = "emitted a record with no topic, and the pipeline declares no outputs";
                return self.dead_letter(transform, input, "contract", reason, out);
            };
            for topic in others {
                out.push(ProduceRecord {
                    timestamp: input.timestamp,
                    topic: topic.clone(),
                    partition: None,
                    key: output.key.clone(),
                    value: output.value.clone(),
                    headers: output.headers.clone(),
                });
            }
            out.push(ProduceRecord {
                timestamp: input.timestamp,
                topic: last.clone(),
                partition: None,
                key: output.key,
                value: output.value,
                headers: output.headers,
            });
        }
        Routed::Emitted(out.len() - before)
    }

    /// Appends `input` bound for the dead-letter topic, with why in headers.
    pub fn dead_letter(
        &self,
        transform: &Transform,
        input: &KafkaRecord,
        kind: &str,
        reason: &str,
        out: &mut Vec<ProduceRecord>,
    ) -> Routed {
        let mut headers = dead_letter::headers(input, transform, kind, reason);
        let stage = stamp(transform);
        let trace = TraceContext::for_processing(input, &stage);
        processed(input, &stage, &trace, Some(reason));
        trace.stamp(&mut headers);
        tracing::warn!(
            trace_id = trace.trace_id_hex(),
            transform = transform.name(),
            version = transform.short_version(),
            topic = input.topic,
            partition = input.partition,
            offset = input.offset,
            error.kind = kind,
            reason,
            "record sent to the dead-letter topic"
        );
        out.push(ProduceRecord {
            timestamp: input.timestamp,
            topic: self.dead_letter.clone(),
            partition: None,
            key: input.key.clone(),
            value: input.value.clone(),
            headers,
        });
        Routed::DeadLettered
    }
}

/// The span of `stage` processing `input` (the one its outputs'
/// `traceparent` names), for a tracing backend when one is configured.
fn processed(input: &KafkaRecord, stage: &str, trace: &TraceContext, failure: Option<&str>) {
    use opentelemetry::KeyValue;
    if !crate::telemetry::enabled() {
        return;
    }
    let parent = input
        .headers
        .iter()
        .rev()
        .find(|h| h.key == super::TRACEPARENT)
        .and_then(|h| std::str::from_utf8(h.value.as_deref()?).ok())
        .and_then(TraceContext::parse);
    let now = std::time::SystemTime::now();
    crate::telemetry::record(crate::telemetry::Span {
        name: format!("process {stage}"),
        context: *trace,
        parent,
        kind: opentelemetry::trace::SpanKind::Consumer,
        start: now,
        end: now,
        attributes: vec![
            KeyValue::new("messaging.destination.name", input.topic.clone()),
            KeyValue::new(
                "messaging.kafka.destination.partition",
                i64::from(input.partition),
            ),
            KeyValue::new("messaging.kafka.message.offset", input.offset),
        ],
        error: failure,
    });
}
