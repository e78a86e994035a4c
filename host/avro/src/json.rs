//! Avro values as JSON text.

use apache_avro::types::Value;

use crate::{DatumError, MAX_DEPTH};

/// The JSON value of `value`, as apache-avro converts it (dates and
/// timestamps as numbers, bytes as arrays of numbers). A value JSON cannot
/// hold (a NaN or infinite double) is an error, not a null.
pub fn to_json(value: Value) -> Result<serde_json::Value, DatumError> {
    serde_json::Value::try_from(value).map_err(|e| DatumError::NotJson(e.to_string()))
}

/// What [`write_json`] does with a NaN or infinite float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonFinite {
    /// An error: the export's typed columns must not guess.
    Refuse,
    /// `null`, as the import writes it rather than refusing a whole file.
    Null,
}

/// The JSON text of `value`, the same JSON [`to_json`] gives (map entries
/// sorted by key, where that gives them in hash order), written straight
/// to `out`: the export's Avro path spent about a third of its time
/// building and dropping the `serde_json::Value` tree in between. The rare
/// kinds (bytes, fixed, decimals, durations) go through that tree. A NaN or
/// infinite float, which JSON cannot hold, is what `non_finite` says. A
/// value nested past [`MAX_DEPTH`] (none that [`crate::WriterSchema`]
/// decodes) is refused rather than followed.
pub fn write_json(
    value: &Value,
    non_finite: NonFinite,
    out: &mut Vec<u8>,
) -> Result<(), DatumError> {
    Writer { non_finite, out }.value(value, 0)
}

struct Writer<'a> {
    non_finite: NonFinite,
    out: &'a mut Vec<u8>,
}

fn json_error(e: serde_json::Error) -> DatumError {
    DatumError::NotJson(e.to_string())
}

impl Writer<'_> {
    fn value(&mut self, value: &Value, depth: usize) -> Result<(), DatumError> {
        let out = &mut *self.out;
        match value {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(n) | Value::Date(n) | Value::TimeMillis(n) => {
                out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes())
            }
            Value::Long(n)
            | Value::TimeMicros(n)
            | Value::TimestampMillis(n)
            | Value::TimestampMicros(n)
            | Value::TimestampNanos(n)
            | Value::LocalTimestampMillis(n)
            | Value::LocalTimestampMicros(n)
            | Value::LocalTimestampNanos(n) => {
                out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes())
            }
            Value::Float(f) => self.number(f64::from(*f))?,
            Value::Double(d) => self.number(*d)?,
            Value::String(s) | Value::Enum(_, s) => write_str(s, out).map_err(json_error)?,
            Value::Uuid(uuid) => {
                serde_json::to_writer(out, &uuid.as_hyphenated().to_string()).map_err(json_error)?
            }
            Value::Union(_, inner) => self.value(inner, deeper(depth)?)?,
            Value::Array(items) => {
                let depth = deeper(depth)?;
                self.out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.value(item, depth)?;
                }
                self.out.push(b']');
            }
            Value::Record(fields) => {
                self.object(fields.iter().map(|(k, v)| (k, v)), deeper(depth)?)?
            }
            Value::Map(entries) => {
                let mut sorted: Vec<(&String, &Value)> = entries.iter().collect();
                sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
                self.object(sorted.into_iter(), deeper(depth)?)?
            }
            rare => {
                let json = to_json(rare.clone())?;
                serde_json::to_writer(out, &json).map_err(json_error)?;
            }
        }
        Ok(())
    }

    fn number(&mut self, n: f64) -> Result<(), DatumError> {
        match serde_json::Number::from_f64(n) {
            Some(n) => serde_json::to_writer(&mut *self.out, &n).map_err(json_error),
            None if self.non_finite == NonFinite::Null => {
                self.out.extend_from_slice(b"null");
                Ok(())
            }
            None => Err(DatumError::NotJson(format!(
                "{n} cannot be represented as JSON"
            ))),
        }
    }

    fn object<'v>(
        &mut self,
        entries: impl Iterator<Item = (&'v String, &'v Value)>,
        depth: usize,
    ) -> Result<(), DatumError> {
        self.out.push(b'{');
        for (i, (key, value)) in entries.enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_str(key, self.out).map_err(json_error)?;
            self.out.push(b':');
            self.value(value, depth)?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

fn deeper(depth: usize) -> Result<usize, DatumError> {
    if depth >= MAX_DEPTH {
        return Err(DatumError::TooDeep { limit: MAX_DEPTH });
    }
    Ok(depth + 1)
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use apache_avro::types::Value as AvroValue;
    use proptest::prelude::*;

    use super::{NonFinite, to_json, write_json};

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
        write_json(&AvroValue::Map(map), NonFinite::Refuse, &mut text).unwrap();
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
            let written = write_json(&value, NonFinite::Refuse, &mut text);
            match to_json(value) {
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
