//! What every target checks of what sluice-avro gives: a decoded value
//! nests no deeper than the limit, its JSON text is the JSON of its tree,
//! and the depth check and apache-avro never read a datum differently.

use apache_avro::types::Value;
use sluice_avro::{DatumError, MAX_DEPTH, NonFinite, to_json, write_json};

/// Checks a decoded value and writes its JSON both ways.
pub fn check_value(value: Value) {
    assert!(
        depth(&value) <= MAX_DEPTH,
        "a value past the depth limit was decoded"
    );
    // apache-avro cannot give some decoded values as JSON (a decimal of no
    // bytes): an error naming why, as for any record, never a panic.
    let mut lenient = Vec::new();
    match write_json(&value, NonFinite::Null, &mut lenient) {
        Ok(()) => {
            serde_json::from_slice::<serde_json::Value>(&lenient).expect("the JSON text parses");
        }
        Err(error) => assert!(matches!(error, DatumError::NotJson(_)), "{error}"),
    }
    let mut strict = Vec::new();
    let written = write_json(&value, NonFinite::Refuse, &mut strict);
    match to_json(value) {
        Ok(tree) => {
            assert!(written.is_ok(), "{written:?}");
            let text: serde_json::Value =
                serde_json::from_slice(&strict).expect("the JSON text parses");
            assert_eq!(text, tree, "the text written differs from the JSON tree");
        }
        Err(_) => assert!(written.is_err(), "the tree refused what the text wrote"),
    }
}

/// Checks an error: never a disagreement between the check and the
/// decoder.
pub fn check_error(error: &DatumError) {
    assert!(!matches!(error, DatumError::Disagreement { .. }), "{error}");
}

/// The value's depth as the limit counts it (records, arrays, maps and
/// unions within each other), counted without recursing.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match value {
            Value::Record(fields) => stack.extend(fields.iter().map(|(_, v)| (v, depth + 1))),
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Map(entries) => stack.extend(entries.values().map(|v| (v, depth + 1))),
            Value::Union(_, inner) => stack.push((inner, depth + 1)),
            _ => {}
        }
    }
    deepest
}
