//! The Sluice library: everything the trigger adapters in `functions/` call.
//!
//! A record's path through this crate follows the module names:
//! [`kafka`] reads and produces, [`runtime`] runs WebAssembly transforms over
//! batches of records, [`table`] lays records out as Arrow tables for
//! Parquet files, [`export`], [`fetch`] and [`enrich`] are the capabilities
//! the adapters call.

pub mod clock;
pub mod codec;
pub mod config;
#[doc(hidden)]
pub mod crash;
pub mod enrich;
pub mod export;
pub mod fetch;
pub mod generate;
pub mod health;
pub mod identity;
pub mod import;
pub mod io;
pub mod json;
pub mod kafka;
pub mod lake;
pub mod metrics;
pub mod names;
pub mod pipeline;
pub mod record;
pub mod registry;
pub mod retry;
pub mod runtime;
pub mod search;
pub mod shadow;
pub mod storage;
pub mod table;
pub mod telemetry;
pub mod topology;
pub mod transforms;
