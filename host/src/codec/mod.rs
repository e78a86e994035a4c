//! Record values in the formats Kafka users send: Avro in the Confluent
//! wire format (magic byte 0, a 4-byte schema id, the Avro body), resolved
//! through a Schema Registry with a cache.

mod avro;
mod registry;

pub use avro::{NonFinite, avro_to_json, decode_confluent, decode_confluent_avro, write_avro_json};
pub use registry::SchemaRegistry;

/// A value that could not be decoded; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("not in the Confluent wire format: {0}")]
    NotConfluent(String),
    #[error("schema registry {url}: schema {id}: {reason}")]
    Registry {
        url: String,
        id: u32,
        reason: String,
    },
    #[error("Avro body does not match schema {id}: {reason}")]
    Avro { id: u32, reason: String },
}
