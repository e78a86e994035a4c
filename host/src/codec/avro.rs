//! Confluent-framed Avro to JSON.

use super::{CodecError, SchemaRegistry};

/// Decodes `[0, id (4 bytes, big-endian), Avro body]` to JSON with the
/// writer's schema from the registry.
pub fn decode_confluent(
    bytes: &[u8],
    registry: &SchemaRegistry,
) -> Result<serde_json::Value, CodecError> {
    let Some((&magic, rest)) = bytes.split_first() else {
        return Err(CodecError::NotConfluent("the value is empty".into()));
    };
    if magic != 0 {
        return Err(CodecError::NotConfluent(format!(
            "magic byte is {magic}, expected 0"
        )));
    }
    if rest.len() < 4 {
        return Err(CodecError::NotConfluent(format!(
            "{} bytes, too short for a schema id",
            bytes.len()
        )));
    }
    let (id_bytes, mut body) = rest.split_at(4);
    let id = u32::from_be_bytes([id_bytes[0], id_bytes[1], id_bytes[2], id_bytes[3]]);
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
    serde_json::Value::try_from(value).map_err(|e| avro_error(e.to_string()))
}
