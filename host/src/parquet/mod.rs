//! Parquet output. Today: JSON records (an aggregator's result) written as a
//! typed table; the export's streaming writer with Kafka metadata columns
//! grows beside it.

mod json_table;
mod kafka_table;

pub use json_table::{ParquetError, write_json_records};
pub use kafka_table::{Rejected, ValueColumn, schema as kafka_schema, to_batch as kafka_batch};
