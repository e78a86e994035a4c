//! Inputs of every shape for property tests: JSON documents nested a few
//! levels, with the keys Sluice's formats use mixed among random ones so
//! the parsers get past their first check; and plain bytes.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys the topics.json, connections.json, pipeline and Functions payload
/// formats read, so generated objects often look almost right.
const KEYS: &[&str] = &[
    "topic",
    "group_id",
    "num_messages",
    "reset_offsets",
    "starting_offsets",
    "offset_increment",
    "value_format",
    "aggregator",
    "bootstrap_servers",
    "ssl_config",
    "sasl",
    "storage_url",
    "kafka_properties",
    "name",
    "inputs",
    "outputs",
    "transform",
    "join",
    "key",
    "timeout_ms",
    "on_timeout",
    "max_pending",
    "max_pending_bytes",
    "max_fields",
    "dead_letter",
    "metadata",
    "limits",
    "memory_mb",
    "deadline_ms",
    "budget_ms",
    "batch_size",
    "start",
    "version",
    "Data",
    "Metadata",
    "kevent",
    "kevents",
    "Value",
    "Key",
    "Offset",
    "Partition",
    "Topic",
    "Timestamp",
    "Headers",
    "IsPastDue",
    "0",
    "1",
    "-1",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z0-9_.-]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        proptest::sample::select(KEYS).prop_map(|k| Value::String(k.to_owned())),
    ]
}

/// Any JSON document, up to four levels deep.
pub fn json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(KEYS).prop_map(str::to_owned),
                        "[a-z_]{0,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// JSON text, sometimes cut short or with a byte changed, and bytes.
pub fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => (json(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let at = cut.index(text.len().max(1));
            text[..at.min(text.len())].to_vec()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}
