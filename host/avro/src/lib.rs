//! Avro as Kafka users send it, with nothing of Kafka or WebAssembly: the
//! Confluent frame ([`split_frame`]), writer schemas parsed within limits
//! ([`WriterSchema`]), datums checked before they are decoded, values
//! written as JSON text ([`write_json`]), and object container files
//! ([`Container`]). `sluice-host` re-exports it (`sluice_host::codec`); it
//! is a crate of its own so that `host/fuzz/` can build it with the
//! fuzzer's instrumentation without compiling wasmtime and librdkafka.
//!
//! apache-avro decodes recursively with no depth limit, so a recursive
//! schema (a linked list, a tree) with a datum nested deep enough would
//! overflow the stack and abort the whole process. Every datum is
//! therefore first walked against its schema with an explicit depth
//! counter (`scan.rs`) and refused past [`MAX_DEPTH`] before apache-avro
//! sees it; a schema's own JSON is refused past [`MAX_SCHEMA_DEPTH`].

mod container;
mod error;
mod frame;
mod json;
mod scan;
mod schema;

pub use apache_avro::types::Value;
pub use container::{Container, MAX_BLOCK_BYTES};
pub use error::{BlockError, ContainerError, DatumError, FrameError, SchemaError};
pub use frame::split_frame;
pub use json::{NonFinite, to_json, write_json};
pub use schema::WriterSchema;

/// How deep a value may nest: each record, array, map or union inside
/// another is one level (a linked list's node is two: the record and the
/// union of its `next`), so a list of 64 nodes or a binary tree 64 levels
/// deep fits. What it bounds is the stack: apache-avro's decoder, the JSON
/// writer and the value's drop all recurse once per level, and at this
/// depth they need about 384 KiB (optimised), a fifth of the 2 MiB a Rust
/// thread has (`tests/depth.rs`).
pub const MAX_DEPTH: usize = 128;

/// How deep a schema's JSON may nest (objects and arrays within each
/// other; a record inside a record's field is three levels). serde_json
/// stops at 128 anyway; this says so by name before any parser runs.
/// apache-avro's schema parser recurses once per level and needs about
/// 400 KiB at this depth.
pub const MAX_SCHEMA_DEPTH: usize = 127;

/// Array items that take no bytes at all (of `null`, or of a record with
/// no fields) that one datum may hold. Every other item takes at least a
/// byte, so the datum's size bounds it; these would otherwise let a few
/// bytes claim billions of values, each of which apache-avro allocates.
pub const MAX_EMPTY_ITEMS: usize = 4096;
