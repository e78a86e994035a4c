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
