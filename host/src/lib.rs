//! The Sluice library: everything the trigger adapters in `functions/` call.
//!
//! A record's path through this crate follows the module names:
//! [`kafka`] reads and produces, [`runtime`] runs WebAssembly transforms over
//! batches of records, [`parquet`] writes columnar files.

pub mod codec;
pub mod config;
#[doc(hidden)]
pub mod crash;
pub mod enrich;
pub mod export;
pub mod generate;
pub mod import;
pub mod io;
pub mod kafka;
pub mod parquet;
pub mod pipeline;
pub mod record;
pub mod registry;
pub mod runtime;
pub mod storage;
pub mod topology;
pub mod transforms;
