//! Records as Arrow tables for Parquet files: JSON records (an aggregator's result) as a typed table,
//! and Kafka records with their metadata columns, the value as JSON text or
//! bytes, and typed value columns from Avro schemas.

mod avro_columns;
mod json_table;
mod kafka_table;

pub use avro_columns::{
    Cell, ValueField, merged_fields, schema_with, typed_cells, with_value_columns,
};
pub use json_table::{ParquetError, write_json_records};
pub use kafka_table::{
    Timestamps, ValueColumn, admit, schema as kafka_schema, to_batch as kafka_batch,
};
