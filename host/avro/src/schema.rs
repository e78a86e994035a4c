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
    /// before apache-avro's parser (which recurses per level) sees it.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        if json_depth_exceeds(text.as_bytes(), MAX_SCHEMA_DEPTH) {
            return Err(SchemaError::TooDeep {
                limit: MAX_SCHEMA_DEPTH,
            });
        }
        let invalid = |e: apache_avro::Error| SchemaError::Invalid(e.to_string());
        let schema = Schema::parse_str(text).map_err(invalid)?;
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
