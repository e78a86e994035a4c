//! What happens to routed records the producer does not deliver. One
//! record the broker refuses for good (too large for `message.max.bytes`,
//! invalid, not allowed on its topic) must not stop the stream: it goes to
//! the dead-letter topic with the reason and where it came from, its value
//! cut to fit when size was the problem, and the batch goes on. A refusal
//! that may pass (a timeout, a broker gone) is sent again with backoff; if
//! it still fails, the caller fails too and commits nothing past it.

use std::time::Duration;

use super::dead_letter;
use super::route::Routing;
use crate::kafka::{KafkaError, ProduceRecord, Producer, Refused};
use crate::record::{Header, KafkaRecord, RecordRef};
use crate::retry::Backoff;
use crate::runtime::Transform;

/// Header on a dead letter whose value was cut to fit: the value's
/// length before.
pub const TRUNCATED_HEADER: &str = "sluice.dead_letter.truncated_from";

/// What a record besides its key, value and headers takes in a produce
/// request, at most (Kafka's record overhead, rounded up generously).
const RECORD_OVERHEAD: usize = 512;

/// A refused record on its way again.
struct Retry {
    record: ProduceRecord,
    /// How often it was cut to fit: a dead letter the broker still refuses
    /// is cut harder, then given up.
    cuts: u32,
    error: Refused,
}

/// Settles the records `sent` (a send of `records`): waits for every
/// acknowledgement, dead-letters the records refused for good (their
/// source from `source_of`, by index in `records`), sends again the ones
/// refused for now. Returns how many records went to the dead-letter
/// topic instead of their output.
pub fn settle(
    producer: &Producer,
    refused: Vec<Refused>,
    records: &[ProduceRecord],
    routing: &Routing,
    transform: &Transform,
    source_of: &dyn Fn(usize) -> Option<RecordRef>,
    backoff: Backoff,
) -> Result<u64, KafkaError> {
    let mut dead_lettered = 0;
    let mut waits = backoff.delays();
    let mut work: Vec<Retry> = refused
        .into_iter()
        .filter_map(|error| {
            let record = records.get(error.index)?.clone();
            Some(Retry {
                record,
                cuts: 0,
                error,
            })
        })
        .collect();
    let limit = producer.max_message_bytes();
    while !work.is_empty() {
        let mut again = Vec::with_capacity(work.len());
        let mut transient: Option<&Refused> = None;
        for retry in &work {
            if !retry.error.is_permanent() {
                transient.get_or_insert(&retry.error);
                again.push(Retry {
                    record: retry.record.clone(),
                    cuts: retry.cuts,
                    error: retry.error.clone(),
                });
                continue;
            }
            let reason = format!(
                "the broker refused the record for good: {} ({} bytes of value, message.max.bytes {limit})",
                retry.error.error,
                retry.record.value.as_ref().map_or(0, Vec::len),
            );
            if retry.record.topic == routing.dead_letter {
                // A dead letter itself refused: cut it to fit, harder each
                // time; one that cannot be delivered stops the caller.
                if retry.cuts >= 2 {
                    return Err(KafkaError::Produce {
                        topic: retry.record.topic.clone(),
                        source: retry.error.error.clone(),
                    });
                }
                let mut record = retry.record.clone();
                cut_to_fit(&mut record, limit >> (2 * retry.cuts));
                again.push(Retry {
                    record,
                    cuts: retry.cuts + 1,
                    error: retry.error.clone(),
                });
                continue;
            }
            let source = source_of(retry.error.index).unwrap_or(RecordRef {
                topic: String::new(),
                partition: -1,
                offset: -1,
            });
            tracing::warn!(
                topic = retry.record.topic,
                source.topic = source.topic,
                source.partition = source.partition,
                source.offset = source.offset,
                error = %retry.error.error,
                "output refused by the broker for good; sent to the dead-letter topic"
            );
            let mut record = dead_letter_of(&retry.record, &source, routing, transform, &reason);
            cut_to_fit(&mut record, limit);
            dead_lettered += 1;
            again.push(Retry {
                record,
                cuts: 1,
                error: retry.error.clone(),
            });
        }
        if let Some(error) = transient {
            let Some(wait) = waits.next() else {
                return Err(KafkaError::Produce {
                    topic: work
                        .iter()
                        .find(|r| !r.error.is_permanent())
                        .map(|r| r.record.topic.clone())
                        .unwrap_or_default(),
                    source: error.error.clone(),
                });
            };
            tracing::warn!(error = %error.error, wait_ms = wait.as_millis() as u64, "records refused for now; sending them again");
            std::thread::sleep(wait.min(Duration::from_secs(30)));
        }
        let records: Vec<ProduceRecord> = again.iter().map(|r| r.record.clone()).collect();
        let refused = producer.send(&records)?.refused();
        work = refused
            .into_iter()
            .filter_map(|error| {
                let retry = again.get(error.index)?;
                Some(Retry {
                    record: retry.record.clone(),
                    cuts: retry.cuts,
                    error: Refused {
                        // Sources are looked up by the original index.
                        index: retry.error.index,
                        error: error.error,
                    },
                })
            })
            .collect();
    }
    Ok(dead_lettered)
}

/// `output`, refused by the broker, as a dead letter: its key, value and
/// headers, and headers saying why and where it came from.
fn dead_letter_of(
    output: &ProduceRecord,
    source: &RecordRef,
    routing: &Routing,
    transform: &Transform,
    reason: &str,
) -> ProduceRecord {
    let as_input = KafkaRecord {
        topic: source.topic.clone(),
        partition: source.partition,
        offset: source.offset,
        timestamp: output.timestamp,
        key: output.key.clone(),
        value: output.value.clone(),
        headers: output.headers.clone(),
    };
    ProduceRecord {
        topic: routing.dead_letter.clone(),
        partition: None,
        key: output.key.clone(),
        value: output.value.clone(),
        headers: dead_letter::headers(&as_input, transform, "produce", reason),
        timestamp: output.timestamp,
    }
}

/// Cuts `record`'s value so that the record fits in `limit` bytes, and
/// says so in a header; a record that fits is left alone.
fn cut_to_fit(record: &mut ProduceRecord, limit: usize) {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
        .sum();
    let key = record.key.as_ref().map_or(0, Vec::len);
    let Some(value) = &mut record.value else {
        return;
    };
    let room = limit.saturating_sub(headers + key + RECORD_OVERHEAD + TRUNCATED_HEADER.len() + 20);
    if value.len() <= room {
        return;
    }
    let original = value.len();
    value.truncate(room);
    record.headers.push(Header {
        key: TRUNCATED_HEADER.to_owned(),
        value: Some(original.to_string().into_bytes()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_cut_to_fit_and_says_from_what() {
        let mut record = ProduceRecord {
            topic: "dlq".into(),
            partition: None,
            key: Some(vec![b'k'; 10]),
            value: Some(vec![b'v'; 5_000]),
            headers: vec![Header {
                key: "h".into(),
                value: Some(vec![b'x'; 100]),
            }],
            timestamp: None,
        };
        let fits = record.clone();
        let mut same = fits.clone();
        cut_to_fit(&mut same, 10_000);
        assert_eq!(same, fits, "a record that fits is left alone");

        cut_to_fit(&mut record, 2_000);
        let size = record.value.as_ref().unwrap().len()
            + 10
            + record
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
        assert!(size + RECORD_OVERHEAD <= 2_000, "{size}");
        let truncated = record.headers.last().unwrap();
        assert_eq!(truncated.key, TRUNCATED_HEADER);
        assert_eq!(truncated.value.as_deref(), Some(&b"5000"[..]));
    }
}
