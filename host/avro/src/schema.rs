//! Writer schemas, parsed within limits and made ready to decode: the
//! registry keeps one per schema id, a container file has one in its
//! header.

use std::collections::HashMap;
use std::fmt;

use apache_avro::headers::HeaderBuilder;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::{GenericSingleObjectReader, Schema};

use crate::scan::datum_len;
use crate::{DatumError, MAX_SCHEMA_DEPTH, SchemaError, Value};

/// A schema whose datums can be decoded safely: each is checked against
/// the limits (`scan.rs`) before apache-avro decodes it.
pub struct WriterSchema {
    schema: Schema,
    /// Named types by full name, for the check to follow references.
    names: HashMap<Name, Schema>,
    /// apache-avro's decoder with the names resolved once, rather than for
    /// every record as `from_avro_datum` resolves them.
    decoder: GenericSingleObjectReader,
}

impl WriterSchema {
    /// Parses `text`, refusing JSON nested past [`MAX_SCHEMA_DEPTH`]
    /// before apache-avro's parser (which recurses per level) sees it, and
    /// names it would panic on.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        if json_depth_exceeds(text.as_bytes(), MAX_SCHEMA_DEPTH) {
            return Err(SchemaError::TooDeep {
                limit: MAX_SCHEMA_DEPTH,
            });
        }
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| SchemaError::Invalid(e.to_string()))?;
        check_names(&json)?;
        let invalid = |e: apache_avro::Error| SchemaError::Invalid(e.to_string());
        let schema = Schema::parse(&json).map_err(invalid)?;
        let names = ResolvedSchema::try_from(&schema)
            .map_err(invalid)?
            .get_names()
            .iter()
            .map(|(name, schema)| (name.clone(), (*schema).clone()))
            .collect();
        let decoder = GenericSingleObjectReader::new_with_header_builder(schema.clone(), NoHeader)
            .map_err(invalid)?;
        Ok(WriterSchema {
            schema,
            names,
            decoder,
        })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The value of `datum`, which must be exactly one value.
    pub fn decode(&self, datum: &[u8]) -> Result<Value, DatumError> {
        let (value, used) = self.decode_first(datum)?;
        match datum.len() - used {
            0 => Ok(value),
            left => Err(DatumError::LeftOver(left)),
        }
    }

    /// The value at the start of `bytes` and the bytes it took.
    pub(crate) fn decode_first(&self, bytes: &[u8]) -> Result<(Value, usize), DatumError> {
        let checked = datum_len(&self.schema, &self.names, bytes)?;
        let mut datum = bytes.get(..checked).unwrap_or_default();
        let value = self
            .decoder
            .read_value(&mut datum)
            .map_err(|e| DatumError::Decoder(e.to_string()))?;
        if !datum.is_empty() {
            return Err(DatumError::Disagreement {
                checked,
                decoded: checked - datum.len(),
            });
        }
        Ok((value, checked))
    }
}

impl fmt::Debug for WriterSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterSchema")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// A datum with no header before it: apache-avro's single-object reader,
/// whose header is empty, is its decoder with the names resolved once.
struct NoHeader;

impl HeaderBuilder for NoHeader {
    fn build_header(&self) -> Vec<u8> {
        Vec::new()
    }
}

/// Refuses a named type's name or alias that apache-avro 0.21 would
/// panic on rather than refuse (it unwraps their validation): each must be
/// a full name, `[A-Za-z_][A-Za-z0-9_]*` parts joined by dots (found by
/// the `schema` fuzz target). Walked without recursing.
fn check_names(json: &serde_json::Value) -> Result<(), SchemaError> {
    let mut stack = vec![json];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(object) => {
                let named = matches!(
                    object.get("type").and_then(serde_json::Value::as_str),
                    Some("record" | "error" | "enum" | "fixed")
                );
                if named {
                    let name = object.get("name").and_then(serde_json::Value::as_str);
                    let aliases = object
                        .get("aliases")
                        .and_then(serde_json::Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(serde_json::Value::as_str);
                    if let Some(bad) = name.into_iter().chain(aliases).find(|n| !is_full_name(n)) {
                        return Err(SchemaError::Invalid(format!(
                            "`{bad}` is not a valid name (letters, digits and _, not starting with a digit, namespaces joined by dots)"
                        )));
                    }
                }
                stack.extend(object.values());
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `name` is what apache-avro's name pattern accepts: an optional
/// namespace (possibly empty) and a dot, then a simple name.
fn is_full_name(name: &str) -> bool {
    let simple = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match name.rsplit_once('.') {
        None => simple(name),
        Some((namespace, name)) => {
            simple(name) && (namespace.is_empty() || namespace.split('.').all(simple))
        }
    }
}

/// Whether JSON `text` nests objects and arrays more than `limit` deep,
/// counted without recursing (brackets inside strings do not count).
fn json_depth_exceeds(text: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}
