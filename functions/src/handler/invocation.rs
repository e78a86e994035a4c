//! The custom-handler payloads, as Microsoft documents them, and the
//! host's quirks: string inputs arrive JSON-encoded a second time and
//! numbers in `Metadata` arrive as strings. [`Invocation`] reads a payload
//! up to the [`PayloadLimit`] the Kafka trigger's batch size calls for.

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AppState;
use super::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvocationRequest {
    #[serde(default)]
    pub data: Map<String, Value>,
    #[serde(default)]
    pub metadata: Value,
}

#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct InvocationResponse {
    pub outputs: Map<String, Value>,
    pub logs: Vec<String>,
    pub return_value: Value,
}

/// A binding's value, undoing the host's second JSON encoding of strings.
pub fn decoded(value: &Value) -> Value {
    match value {
        Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| value.clone()),
        other => other.clone(),
    }
}

/// A boolean that may arrive as `true` or as `"true"`.
pub fn flag(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The record size the limit is made for: Kafka's default
/// `message.max.bytes` (1,048,588 bytes, a record batch) and Event Hubs'
/// largest event (1 MB), rounded up to 1 MiB.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Payload bytes one byte of a record can become on its way to `/Enrich`.
/// The extension serialises each event to JSON (Newtonsoft), the host
/// serialises the batch's list of those strings to a JSON string for
/// `Data`, and that goes into the JSON body: three encodings, in which a
/// control character becomes `\u0001`, then `\\u0001`, then `\\\\u0001`
/// (9 bytes). A key's bytes come twice: in the event and in `Metadata`'s
/// `KeyArray` (two encodings, 7 bytes): 16 in all, the most any byte costs.
pub const PAYLOAD_BYTES_PER_RECORD_BYTE: usize = 16;

/// An event's own fields, in `Data` and in `Metadata`'s arrays: offset,
/// partition, a topic name of up to 249 characters, a timestamp, the
/// property names, all escaped three times.
pub const PER_EVENT_FIELDS: usize = 4 << 10;

/// The rest of a payload: `Metadata.sys` and the envelope's names.
pub const ENVELOPE: usize = 64 << 10;

/// The Kafka extension's own `maxBatchSize` when host.json sets none.
pub const EXTENSION_DEFAULT_MAX_BATCH_SIZE: usize = 64;

/// host.json as `sluice package` ships it.
const BUILT_IN_HOST_JSON: &str = include_str!("../../app/host.json");

/// The largest custom-handler payload read: a Kafka-trigger batch of
/// `max_batch_size` records of [`MAX_RECORD_BYTES`] each, however their
/// bytes escape. A payload past it is a 413 before anything is read into
/// memory past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadLimit {
    pub max_batch_size: usize,
    pub bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum HostJsonError {
    #[error("host.json is not JSON: {0}")]
    NotJson(String),
    #[error("host.json: extensions.kafka.maxBatchSize must be a positive whole number, not {0}")]
    BadBatchSize(String),
}

impl PayloadLimit {
    pub fn for_batch(max_batch_size: usize) -> PayloadLimit {
        let per_event = MAX_RECORD_BYTES * PAYLOAD_BYTES_PER_RECORD_BYTE + PER_EVENT_FIELDS;
        PayloadLimit {
            max_batch_size,
            bytes: max_batch_size
                .saturating_mul(per_event)
                .saturating_add(ENVELOPE),
        }
    }

    /// From a host.json's `extensions.kafka.maxBatchSize` (the host reads
    /// its settings whatever their case), or the extension's default.
    pub fn from_host_json(text: &str) -> Result<PayloadLimit, HostJsonError> {
        let json: Value =
            serde_json::from_str(text).map_err(|e| HostJsonError::NotJson(e.to_string()))?;
        let find = |object: &Value, name: &str| -> Option<Value> {
            object
                .as_object()?
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        let size = find(&json, "extensions")
            .and_then(|e| find(&e, "kafka"))
            .and_then(|k| find(&k, "maxBatchSize"));
        let Some(size) = size else {
            return Ok(PayloadLimit::for_batch(EXTENSION_DEFAULT_MAX_BATCH_SIZE));
        };
        size.as_u64()
            .filter(|n| *n > 0)
            .and_then(|n| usize::try_from(n).ok())
            .map(PayloadLimit::for_batch)
            .ok_or_else(|| HostJsonError::BadBatchSize(size.to_string()))
    }

    /// The limit for the host.json `sluice package` ships.
    pub fn built_in() -> PayloadLimit {
        PayloadLimit::from_host_json(BUILT_IN_HOST_JSON).unwrap_or_else(|error| {
            tracing::warn!(%error, "the built-in host.json; using the extension's default batch size");
            PayloadLimit::for_batch(EXTENSION_DEFAULT_MAX_BATCH_SIZE)
        })
    }

    fn refusal(&self, size: Option<u64>) -> ApiError {
        let size = size.map_or_else(|| "larger".to_owned(), |n| format!("{n} bytes"));
        let message = format!(
            "the custom-handler payload is {size}, over the limit of {} bytes: the most a \
             Kafka-trigger batch of maxBatchSize {} (host.json) records of up to {} bytes can \
             take. Lower extensions.kafka.maxBatchSize in host.json, or keep records within \
             that size",
            self.bytes, self.max_batch_size, MAX_RECORD_BYTES
        );
        tracing::error!(limit = self.bytes, "{message}");
        ApiError(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
}

/// The body, read up to `limit` bytes; past it, the limit's refusal. A
/// `Content-Length` past it is refused before anything is read.
pub async fn read_limited(request: Request, limit: &PayloadLimit) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.bytes as u64) {
        return Err(limit.refusal(declared));
    }
    // Gathered into one buffer as it comes (sized by the declared length),
    // so a large payload is never held twice.
    let expected = declared.map_or(0, |n| usize::try_from(n).unwrap_or(0));
    let mut body = BytesMut::with_capacity(expected.min(limit.bytes));
    let mut limited = Limited::new(request.into_body(), limit.bytes);
    while let Some(frame) = limited.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    body.extend_from_slice(data);
                }
            }
            Err(error) if error.is::<LengthLimitError>() => return Err(limit.refusal(declared)),
            Err(error) => {
                return Err(ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("the custom-handler payload could not be read: {error}"),
                ));
            }
        }
    }
    Ok(body.freeze())
}

/// A custom-handler payload, read within the app's [`PayloadLimit`].
pub struct Invocation(pub InvocationRequest);

impl FromRequest<Arc<AppState>> for Invocation {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let body = read_limited(request, &state.config.payload_limit).await?;
        serde_json::from_slice(&body).map(Invocation).map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("the custom-handler payload is not {{\"Data\", \"Metadata\"}} JSON: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use serde_json::json;

    #[test]
    fn the_built_in_host_json_pins_the_batch_size_the_limit_is_made_for() {
        let limit = PayloadLimit::from_host_json(BUILT_IN_HOST_JSON).unwrap();
        assert_eq!(limit, PayloadLimit::built_in());
        assert_eq!(limit.max_batch_size, 32);
        assert_eq!(limit.bytes, 537_067_520, "about 512 MiB");
    }

    #[test]
    fn the_batch_size_is_read_whatever_its_case_and_defaults_to_the_extensions() {
        let size = |text: &str| PayloadLimit::from_host_json(text).map(|l| l.max_batch_size);
        assert_eq!(
            size(r#"{"extensions": {"kafka": {"MaxBatchSize": 8}}}"#).unwrap(),
            8
        );
        assert_eq!(size(r#"{"version": "2.0"}"#).unwrap(), 64);
        let error = size(r#"{"extensions": {"kafka": {"maxBatchSize": 0}}}"#).unwrap_err();
        assert!(error.to_string().contains("maxBatchSize"), "{error}");
        assert!(size("{").is_err());
    }

    /// The payload bytes of an event with `key` and `value`: `Data` as the
    /// extension and the host encode it, and `Metadata.KeyArray`.
    fn payload_bytes(key: &str, value: &str) -> usize {
        let event = json!({"Key": key, "Value": value}).to_string();
        let list = Value::from(vec![event]).to_string();
        let data = json!({"kevents": list}).to_string();
        let key_array = Value::from(vec![key]).to_string();
        let metadata = json!({"KeyArray": key_array}).to_string();
        data.len() + metadata.len()
    }

    /// The worst bytes through the encodings the payload goes through
    /// cost no more than the allowance, and a control character in a key
    /// costs all of it.
    #[test]
    fn a_record_byte_costs_at_most_the_allowance_in_the_payload() {
        let empty = payload_bytes("", "");
        for byte in ['\u{1}', '"', '\\', 'a', '\u{2028}'] {
            let text: String = std::iter::repeat_n(byte, 1000).collect();
            let bytes = text.len();
            let as_key = payload_bytes(&text, "") - empty;
            let as_value = payload_bytes("", &text) - empty;
            for cost in [as_key, as_value] {
                assert!(
                    cost <= bytes * PAYLOAD_BYTES_PER_RECORD_BYTE,
                    "{byte:?}: {cost} for {bytes}"
                );
            }
        }
        let control = payload_bytes(&"\u{1}".repeat(1000), "") - empty;
        assert_eq!(control, 1000 * PAYLOAD_BYTES_PER_RECORD_BYTE);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused_whether_or_not_its_length_is_declared() {
        let limit = PayloadLimit {
            max_batch_size: 1,
            bytes: 1000,
        };
        // No Content-Length: read until the limit is passed.
        let streamed = |size: usize| Request::new(Body::from(vec![b'x'; size]));
        assert_eq!(
            read_limited(streamed(1000), &limit).await.unwrap().len(),
            1000
        );
        let refused = read_limited(streamed(1100), &limit).await.unwrap_err();
        assert_eq!(refused.0, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(refused.1.contains("maxBatchSize 1"), "{}", refused.1);
        let declared = Request::builder()
            .header("content-length", "1001")
            .body(Body::from(vec![b'x'; 1001]))
            .unwrap();
        let refused = read_limited(declared, &limit).await.unwrap_err();
        assert!(refused.1.contains("1001 bytes"), "{}", refused.1);
    }
}
