//! Confluent-framed Avro to JSON, with the writer's schema from the
//! registry. The frame, the checked decoding and the JSON text are
//! `sluice-avro`'s (`host/avro/`), which this module puts behind the
//! registry.

use apache_avro::types::Value as AvroValue;
use sluice_avro::{NonFinite, split_frame, to_json, write_json};

use super::{CodecError, SchemaRegistry};

/// Decodes `[0, id (4 bytes, big-endian), Avro body]` to JSON with the
/// writer's schema from the registry. A value JSON cannot hold (a NaN or
/// infinite double) is an error, not a null.
pub fn decode_confluent(
    bytes: &[u8],
    registry: &SchemaRegistry,
) -> Result<serde_json::Value, CodecError> {
    let (id, value) = decode_confluent_avro(bytes, registry)?;
    to_json(value).map_err(|source| CodecError::Avro { id, source })
}

/// Decodes a Confluent frame to the Avro value and the writer schema's id.
/// A value nested past [`sluice_avro::MAX_DEPTH`] is refused before it is
/// decoded (`CodecError::Avro` with `DatumError::TooDeep`).
pub fn decode_confluent_avro(
    bytes: &[u8],
    registry: &SchemaRegistry,
) -> Result<(u32, AvroValue), CodecError> {
    let (id, body) = split_frame(bytes)?;
    let schema = registry.schema(id)?;
    let value = schema
        .decode(body)
        .map_err(|source| CodecError::Avro { id, source })?;
    Ok((id, value))
}

/// The JSON text of `value`, decoded with schema `id`, appended to `out`
/// (see [`write_json`]).
pub fn write_avro_json(
    id: u32,
    value: &AvroValue,
    non_finite: NonFinite,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    write_json(value, non_finite, out).map_err(|source| CodecError::Avro { id, source })
}
