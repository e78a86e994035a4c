//! What a dead-lettered record carries: the original key, value and headers,
//! plus headers saying why, which transform and version, and where from.

use super::header;
use crate::record::{Header, KafkaRecord};
use crate::runtime::Transform;

pub fn headers(
    source: &KafkaRecord,
    transform: &Transform,
    kind: &str,
    reason: &str,
) -> Vec<Header> {
    let text = |key: &str, value: String| Header {
        key: key.to_owned(),
        value: Some(value.into_bytes()),
    };
    let mut headers = source.headers.clone();
    headers.extend([
        text(header::ERROR_KIND, kind.to_owned()),
        text(header::ERROR_REASON, reason.to_owned()),
        text(header::TRANSFORM, stamp(transform)),
        text(header::SOURCE_TOPIC, source.topic.clone()),
        text(header::SOURCE_PARTITION, source.partition.to_string()),
        text(header::SOURCE_OFFSET, source.offset.to_string()),
    ]);
    headers
}

/// `name@version`, as stamped on every record a transform made.
pub fn stamp(transform: &Transform) -> String {
    // Made for every record routed: one allocation, no formatting.
    let (name, version) = (transform.name(), transform.short_version());
    let mut stamp = String::with_capacity(name.len() + 1 + version.len());
    stamp.push_str(name);
    stamp.push('@');
    stamp.push_str(version);
    stamp
}
