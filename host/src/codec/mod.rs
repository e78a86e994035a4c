//! Record values in the formats Kafka users send: Avro in the Confluent
//! wire format (magic byte 0, a 4-byte schema id, the Avro body), resolved
//! through a Schema Registry with a cache. What needs no registry (the
//! frame, schemas and datums within limits, JSON text, container files) is
//! the `sluice-avro` crate, re-exported here.

mod avro;
mod registry;

pub use avro::{decode_confluent, decode_confluent_avro, write_avro_json};
pub use registry::{RegistryAuth, SchemaRegistry};
pub use sluice_avro::{
    BlockError, Container, ContainerError, DatumError, FrameError, MAX_DEPTH, MAX_SCHEMA_DEPTH,
    NonFinite, SchemaError, WriterSchema, to_json, write_json,
};

/// A value that could not be decoded; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("not in the Confluent wire format: {0}")]
    NotConfluent(#[from] FrameError),
    /// The registry answered, definitively, that it has no usable schema
    /// for the id (not found, not Avro, not a valid schema): the record
    /// cannot be decoded, now or later.
    #[error("schema registry {url}: schema {id}: {reason}")]
    Registry {
        url: String,
        id: u32,
        reason: String,
    },
    /// The registry could not be asked (refused connection, timeout, an
    /// answer 5xx, 429, 401 or 403), even after retries: says nothing about
    /// the record, so the caller must fail rather than give the record up.
    #[error("schema registry {url} is unavailable: {reason}")]
    RegistryUnavailable { url: String, reason: String },
    /// The body cannot be decoded with schema `id` (it does not match, or
    /// it nests past the depth limit), or its value cannot be JSON.
    #[error("Avro body of schema {id}: {source}")]
    Avro { id: u32, source: DatumError },
}

impl CodecError {
    /// Whether the failure is the registry's, not the record's: such a
    /// record must not be dead-lettered, and nothing after it committed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CodecError::RegistryUnavailable { .. })
    }
}
