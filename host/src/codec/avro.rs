//! Confluent-framed Avro to JSON.

use apache_avro::types::Value as AvroValue;

use super::{CodecError, SchemaRegistry};

/// Decodes `[0, id (4 bytes, big-endian), Avro body]` to JSON with the
/// writer's schema from the registry. A value JSON cannot hold (a NaN or
/// infinite double) is an error, not a null.
pub fn decode_confluent(
    bytes: &[u8],
    registry: &SchemaRegistry,
) -> Result<serde_json::Value, CodecError> {
    let (id, value) = decode_confluent_avro(bytes, registry)?;
    avro_to_json(id, value)
}

/// The Avro value of a JSON-able record, as [`decode_confluent`] reads it.
pub fn avro_to_json(id: u32, value: AvroValue) -> Result<serde_json::Value, CodecError> {
    serde_json::Value::try_from(value).map_err(|e| CodecError::Avro {
        id,
        reason: e.to_string(),
    })
}

/// What [`write_avro_json`] does with a NaN or infinite float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonFinite {
    /// An error: the export's typed columns must not guess.
    Refuse,
    /// `null`, as the import writes it rather than refusing a whole file.
    Null,
}

/// The JSON text of `value`, the same JSON [`avro_to_json`] gives (map
/// entries sorted by key, where that gives them in hash order), written
/// straight to `out`: the export's Avro path spent about a third of its
/// time building and dropping the `serde_json::Value` tree in between. The
/// rare kinds (bytes, fixed, decimals, durations) go through that tree.
/// A NaN or infinite float, which JSON cannot hold, is what `non_finite`
/// says.
pub fn write_avro_json(
    id: u32,
    value: &AvroValue,
    non_finite: NonFinite,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let json_error = |e: serde_json::Error| CodecError::Avro {
        id,
        reason: e.to_string(),
    };
    let number = |out: &mut Vec<u8>, n: f64| match serde_json::Number::from_f64(n) {
        Some(n) => serde_json::to_writer(&mut *out, &n).map_err(json_error),
        None if non_finite == NonFinite::Null => {
            out.extend_from_slice(b"null");
            Ok(())
        }
        None => Err(CodecError::Avro {
            id,
            reason: format!("{n} cannot be represented as JSON"),
        }),
    };
    match value {
        AvroValue::Null => out.extend_from_slice(b"null"),
        AvroValue::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        AvroValue::Int(n) | AvroValue::Date(n) | AvroValue::TimeMillis(n) => {
            out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes())
        }
        AvroValue::Long(n)
        | AvroValue::TimeMicros(n)
        | AvroValue::TimestampMillis(n)
        | AvroValue::TimestampMicros(n)
        | AvroValue::TimestampNanos(n)
        | AvroValue::LocalTimestampMillis(n)
        | AvroValue::LocalTimestampMicros(n)
        | AvroValue::LocalTimestampNanos(n) => {
            out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes())
        }
        AvroValue::Float(f) => number(out, f64::from(*f))?,
        AvroValue::Double(d) => number(out, *d)?,
        AvroValue::String(s) | AvroValue::Enum(_, s) => write_str(s, out).map_err(json_error)?,
        AvroValue::Uuid(uuid) => {
            serde_json::to_writer(&mut *out, &uuid.as_hyphenated().to_string())
                .map_err(json_error)?
        }
        AvroValue::Union(_, inner) => write_avro_json(id, inner, non_finite, out)?,
        AvroValue::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_avro_json(id, item, non_finite, out)?;
            }
            out.push(b']');
        }
        AvroValue::Record(fields) => {
            write_object(id, fields.iter().map(|(k, v)| (k, v)), non_finite, out)?
        }
        AvroValue::Map(entries) => {
            let mut sorted: Vec<(&String, &AvroValue)> = entries.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            write_object(id, sorted.into_iter(), non_finite, out)?
        }
        rare => {
            let json = avro_to_json(id, rare.clone())?;
            serde_json::to_writer(&mut *out, &json).map_err(json_error)?;
        }
    }
    Ok(())
}

/// `text` as a JSON string. Most strings need no escape: those are copied
/// at once (serde_json's writer, called per string, was a quarter of the
/// import's Avro time under `perf`).
fn write_str(text: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    if !needs_escape(text.as_bytes()) {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, text)
    }
}

/// Whether any byte of `text` must be escaped in a JSON string. Sixteen
/// bytes at a time without an early exit, which the compiler turns into
/// vector compares: the byte-at-a-time loop was itself a quarter of the
/// import's Avro time (most strings are long and need nothing).
fn needs_escape(text: &[u8]) -> bool {
    let escape = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    let mut chunks = text.chunks_exact(16);
    let any_chunk = chunks
        .by_ref()
        .any(|chunk| chunk.iter().fold(false, |found, &b| found | escape(b)));
    any_chunk || chunks.remainder().iter().any(|&b| escape(b))
}

fn write_object<'a>(
    id: u32,
    entries: impl Iterator<Item = (&'a String, &'a AvroValue)>,
    non_finite: NonFinite,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    out.push(b'{');
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(key, out).map_err(|e| CodecError::Avro {
            id,
            reason: e.to_string(),
        })?;
        out.push(b':');
        write_avro_json(id, value, non_finite, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// Decodes a Confluent frame to the Avro value and the writer schema's id.
pub fn decode_confluent_avro(
    bytes: &[u8],
    registry: &SchemaRegistry,
) -> Result<(u32, AvroValue), CodecError> {
    let Some((&magic, rest)) = bytes.split_first() else {
        return Err(CodecError::NotConfluent("the value is empty".into()));
    };
    if magic != 0 {
        return Err(CodecError::NotConfluent(format!(
            "magic byte is {magic}, expected 0"
        )));
    }
    let Some((id_bytes, mut body)) = rest.split_first_chunk::<4>() else {
        return Err(CodecError::NotConfluent(format!(
            "{} bytes, too short for a schema id",
            bytes.len()
        )));
    };
    let id = u32::from_be_bytes(*id_bytes);
    let schema = registry.schema(id)?;
    let avro_error = |reason: String| CodecError::Avro { id, reason };
    let value = apache_avro::from_avro_datum(&schema, &mut body, None)
        .map_err(|e| avro_error(e.to_string()))?;
    if !body.is_empty() {
        return Err(avro_error(format!(
            "{} bytes left over after the record",
            body.len()
        )));
    }
    Ok((id, value))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use apache_avro::types::Value as AvroValue;
    use proptest::prelude::*;

    use super::{NonFinite, avro_to_json, write_avro_json};

    fn leaf() -> impl Strategy<Value = AvroValue> {
        prop_oneof![
            Just(AvroValue::Null),
            any::<bool>().prop_map(AvroValue::Boolean),
            any::<i32>().prop_map(AvroValue::Int),
            any::<i64>().prop_map(AvroValue::Long),
            any::<f32>().prop_map(AvroValue::Float),
            any::<f64>().prop_map(AvroValue::Double),
            ".*".prop_map(AvroValue::String),
            (0u32..4, "[a-z]{1,5}").prop_map(|(i, s)| AvroValue::Enum(i, s)),
            any::<i64>().prop_map(AvroValue::TimestampMicros),
            any::<i32>().prop_map(AvroValue::Date),
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(AvroValue::Bytes),
        ]
    }

    /// Records with distinct field names (as an Avro schema has them) and
    /// maps of one entry, whose order then cannot differ.
    fn value() -> impl Strategy<Value = AvroValue> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AvroValue::Array),
                proptest::collection::btree_map("[a-z\"\\\\é]{0,4}", inner.clone(), 0..4)
                    .prop_map(|fields| AvroValue::Record(fields.into_iter().collect())),
                proptest::collection::hash_map("[a-z]{0,4}", inner.clone(), 0..2)
                    .prop_map(|m: HashMap<String, AvroValue>| AvroValue::Map(m)),
                (0u32..3, inner).prop_map(|(i, v)| AvroValue::Union(i, Box::new(v))),
            ]
        })
    }

    #[test]
    fn map_entries_are_written_in_key_order() {
        let map: HashMap<String, AvroValue> = ["b", "c", "a"]
            .iter()
            .enumerate()
            .map(|(i, k)| (k.to_string(), AvroValue::Int(i as i32)))
            .collect();
        let mut text = Vec::new();
        write_avro_json(1, &AvroValue::Map(map), NonFinite::Refuse, &mut text).unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), r#"{"a":2,"b":0,"c":1}"#);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The chunked check finds an escape wherever it is.
        #[test]
        fn needs_escape_finds_every_escape(text in proptest::collection::vec(
            prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20],
            0..70,
        )) {
            let simple = text.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            prop_assert_eq!(super::needs_escape(&text), simple);
        }

        /// The text written directly is the JSON the serde_json tree gives,
        /// and a value that tree refuses (a NaN) is refused too.
        #[test]
        fn the_text_is_the_json_of_the_tree(value in value()) {
            let mut text = Vec::new();
            let written = write_avro_json(1, &value, NonFinite::Refuse, &mut text);
            match avro_to_json(1, value) {
                Ok(tree) => {
                    prop_assert!(written.is_ok(), "{written:?}");
                    prop_assert_eq!(
                        String::from_utf8(text).unwrap(),
                        serde_json::to_string(&tree).unwrap()
                    );
                }
                Err(_) => prop_assert!(written.is_err()),
            }
        }
    }
}
