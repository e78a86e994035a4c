//! Kafka-trigger payloads as the Azure Functions Kafka extension sends them
//! to a custom handler: `Data.<binding>` holds one event (cardinality ONE)
//! or a list (cardinality MANY), each JSON-encoded once more as a string;
//! an event's header values are base64. Accepted in every shape seen:
//! a string holding an object or a list, a list of strings or of objects.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;
use sluice_host::record::{Header, KafkaRecord};

/// One element of the payload: a record, or why it is not one (kept as
/// text so that it can be dead-lettered as it came).
pub type Event = Result<KafkaRecord, Unreadable>;

#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub text: String,
    pub reason: String,
}

/// The events of a trigger's binding value.
pub fn events(binding: &Value) -> Vec<Event> {
    match binding {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(inner @ (Value::Array(_) | Value::Object(_))) => events(&inner),
            _ => vec![Err(Unreadable {
                text: text.clone(),
                reason: "the trigger sent a string that is not a JSON event or list of events"
                    .into(),
            })],
        },
        Value::Array(items) => items.iter().map(event).collect(),
        Value::Object(_) => vec![event(binding)],
        other => vec![Err(Unreadable {
            text: other.to_string(),
            reason: "the trigger sent neither an event nor a list of events".into(),
        })],
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KafkaEventData {
    topic: String,
    #[serde(deserialize_with = "number")]
    partition: i64,
    #[serde(deserialize_with = "number")]
    offset: i64,
    #[serde(default)]
    timestamp: Option<Value>,
    #[serde(default)]
    key: Option<Value>,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    headers: Option<Vec<EventHeader>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EventHeader {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

/// A number that may arrive as a string, as the extension's metadata does.
fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
        Value::String(s) => s
            .trim_matches('"')
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an integer"))),
        other => Err(serde::de::Error::custom(format!(
            "{other} is not an integer"
        ))),
    }
}

fn event(item: &Value) -> Event {
    let unreadable = |reason: String| Unreadable {
        text: match item {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        reason,
    };
    let object = match item {
        Value::String(text) => serde_json::from_str::<Value>(text)
            .map_err(|e| unreadable(format!("event is not JSON: {e}")))?,
        other => other.clone(),
    };
    let data: KafkaEventData = serde_path_to_error::deserialize(&object)
        .map_err(|e| unreadable(format!("event field `{}`: {}", e.path(), e.inner())))?;
    let partition = i32::try_from(data.partition).map_err(|_| {
        unreadable(format!(
            "event partition {} is out of range",
            data.partition
        ))
    })?;
    let headers = data
        .headers
        .unwrap_or_default()
        .into_iter()
        .map(|h| {
            let value = h
                .value
                .map(|v| STANDARD.decode(v.as_bytes()))
                .transpose()
                .map_err(|e| unreadable(format!("header `{}` is not base64: {e}", h.key)))?;
            Ok(Header { key: h.key, value })
        })
        .collect::<Result<Vec<_>, Unreadable>>()?;
    Ok(KafkaRecord {
        topic: data.topic,
        partition,
        offset: data.offset,
        timestamp: data.timestamp.as_ref().and_then(timestamp_ms),
        key: data.key.as_ref().and_then(payload),
        value: data.value.as_ref().and_then(payload),
        headers,
    })
}

/// A key or value: text as its bytes; JSON the extension already decoded,
/// as its JSON text.
fn payload(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone().into_bytes()),
        other => Some(other.to_string().into_bytes()),
    }
}

/// Milliseconds since the epoch, from an RFC 3339 date or a number.
fn timestamp_ms(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever the trigger sends, each element is a record or a reason
        /// to dead-letter it; nothing is lost and nothing panics.
        #[test]
        fn any_binding_gives_a_record_or_a_reason_per_element(value in sluice_tests::arbitrary::json()) {
            for binding in [value.clone(), Value::String(value.to_string())] {
                for event in events(&binding) {
                    if let Err(unreadable) = event {
                        prop_assert!(!unreadable.reason.is_empty());
                    }
                }
            }
        }
    }

    fn sample(offset: i64) -> Value {
        json!({
            "Offset": offset, "Partition": 1, "Topic": "users",
            "Timestamp": "2021-03-08T12:34:56.789Z",
            "Key": "k1",
            "Value": "{\"id\":7}",
            "Headers": [{"Key": "trace", "Value": STANDARD.encode("abc")}],
        })
    }

    #[test]
    fn a_single_double_encoded_event() {
        let binding = Value::String(sample(5).to_string());
        let records: Vec<KafkaRecord> = events(&binding).into_iter().map(Result::unwrap).collect();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r.topic.as_str(), r.partition, r.offset), ("users", 1, 5));
        assert_eq!(r.timestamp, Some(1_615_206_896_789));
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"{\"id\":7}"[..]));
        assert_eq!(r.headers[0].value.as_deref(), Some(&b"abc"[..]));
    }

    #[test]
    fn batches_in_every_shape() {
        let strings = json!([sample(1).to_string(), sample(2).to_string()]);
        let objects = json!([sample(1), sample(2)]);
        let string_of_list = Value::String(objects.to_string());
        for binding in [strings, objects, string_of_list] {
            let offsets: Vec<i64> = events(&binding)
                .into_iter()
                .map(|e| e.unwrap().offset)
                .collect();
            assert_eq!(offsets, [1, 2], "{binding}");
        }
    }

    #[test]
    fn numbers_as_strings_are_accepted() {
        let mut event = sample(3);
        event["Offset"] = json!("3");
        event["Partition"] = json!("\"1\"");
        let record = events(&event).pop().unwrap().unwrap();
        assert_eq!((record.partition, record.offset), (1, 3));
    }

    #[test]
    fn unreadable_events_say_why_and_keep_their_text() {
        let mut no_topic = sample(1);
        no_topic.as_object_mut().unwrap().remove("Topic");
        let mut bad_header = sample(2);
        bad_header["Headers"] = json!([{"Key": "h", "Value": "%%%"}]);
        let binding = json!([no_topic.to_string(), "{not json", bad_header, sample(3)]);
        let results = events(&binding);
        let reasons: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(|u| u.reason.clone()))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("Topic"), "{}", reasons[0]);
        assert!(reasons[1].contains("not JSON"), "{}", reasons[1]);
        assert!(
            reasons[2].contains("header `h` is not base64"),
            "{}",
            reasons[2]
        );
        assert_eq!(results[1].as_ref().unwrap_err().text, "{not json");
        assert!(results[3].is_ok(), "the good event still counts");
    }
}
