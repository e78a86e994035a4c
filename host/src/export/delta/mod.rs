//! A topic exported as a Delta Lake table (delta-io/delta `PROTOCOL.md`,
//! reader version 1, writer version 2: what Synapse serverless SQL,
//! Fabric, Databricks and the `deltalake` packages read), written by the
//! protocol itself rather than a library: no `deltalake` release is on
//! this crate's arrow/parquet 60 and object_store 0.13, and `delta_kernel`
//! on arrow 60 needs object_store 0.14, a second object store (and its
//! Azure client) in every build, for the little of it an append needs.
//!
//! The data files are the Parquet export's own (one writer, the same rows,
//! dead letters and memory budget); what differs is how they become part
//! of the output. The table's log is the record of what was exported: each
//! commit carries, beside its `add`s, a `txn` per Kafka partition (`appId`
//! `<group>-<partition>`, `version` the last offset), and a run resumes
//! each partition after the version the table holds, as kafka-delta-ingest
//! did. The group's offsets are committed after, for lag tools only.
//!
//! - `actions.rs`: the log's actions, as commit lines and checkpoint rows;
//! - `schema.rs`: the table's schema and the columns a run may add;
//! - `log.rs`: the latest version read from a checkpoint and commits;
//! - `commit.rs`: create-only puts of the next version, conflicts, lost answers;
//! - `checkpoint.rs`: a Parquet checkpoint every N commits, streamed;
//! - `table.rs`: what one run reads, stores and commits.

mod actions;
mod checkpoint;
mod commit;
mod error;
mod files;
mod log;
mod schema;
mod table;

pub use error::DeltaError;
pub(crate) use log::Snapshot;
pub use table::{DeltaReport, DeltaTable};
