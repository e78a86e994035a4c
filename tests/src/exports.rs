//! What the export tests share: records to produce, one topic's export
//! run, a group's offsets set back as a crash after the upload leaves them,
//! and the exactly-once check of what a folder or table stores.

use std::collections::BTreeMap;

use sluice_host::export::{ExportOptions, TopicReport, export_topic};
use sluice_host::kafka::{BoundedReader, KafkaConfig};
use sluice_host::storage::Storage;

use crate::plan;

/// `{"i": from}` .. `{"i": to - 1}`, as JSON text.
pub fn values(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!(r#"{{"i":{i}}}"#)).collect()
}

/// One topic exported by `group` with the topics.json `entry`.
pub fn export(
    config: &KafkaConfig,
    topic: &str,
    group: &str,
    entry: serde_json::Value,
    storage: &Storage,
    options: &ExportOptions,
) -> TopicReport {
    export_topic(
        config,
        &plan(topic, group, entry),
        storage,
        options,
        None,
        |_| {},
    )
    .unwrap()
}

/// Sets `group`'s committed offset of partition 0, as a crash after the
/// upload and before the commit leaves it (any Kafka client can do this).
pub fn set_group_offset(config: &KafkaConfig, topic: &str, group: &str, offset: i64) {
    let reader = BoundedReader::open(config, &plan(topic, group, serde_json::json!({}))).unwrap();
    reader.commit(&[(0, offset)]).unwrap();
}

/// Each of partition 0's offsets `0..count` exactly once, nothing else.
pub fn assert_exactly_once(seen: &BTreeMap<(i32, i64), usize>, count: i64) {
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let missing: Vec<i64> = (0..count)
        .filter(|o| !seen.contains_key(&(0, *o)))
        .collect();
    assert!(missing.is_empty(), "never stored: {missing:?}");
    assert_eq!(seen.len() as i64, count);
}
