//! JSON objects to one Parquet file, with column types inferred from the
//! values (integers, floats, booleans, strings, nested structs).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_json::reader::{ReaderBuilder, infer_json_schema_from_iterator};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    #[error("record {index} is not a JSON object: {value}")]
    NotAnObject { index: usize, value: String },
    #[error("inferring columns from the records: {0}")]
    Schema(String),
    #[error("converting the records to columns: {0}")]
    Convert(String),
    #[error("writing {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Writes `records` to `path` (replacing it whole: readers never see a
/// half-written file) and returns the number of rows.
pub fn write_json_records(
    path: &Path,
    records: &[serde_json::Value],
) -> Result<usize, ParquetError> {
    if let Some((index, value)) = records.iter().enumerate().find(|(_, v)| !v.is_object()) {
        return Err(ParquetError::NotAnObject {
            index,
            value: value.to_string(),
        });
    }
    let schema = infer_json_schema_from_iterator(records.iter().map(Ok))
        .map_err(|e| ParquetError::Schema(e.to_string()))?;
    let schema = Arc::new(schema);
    let mut decoder = ReaderBuilder::new(schema.clone())
        .build_decoder()
        .map_err(|e| ParquetError::Convert(e.to_string()))?;
    decoder
        .serialize(records)
        .map_err(|e| ParquetError::Convert(e.to_string()))?;
    let batch = decoder
        .flush()
        .map_err(|e| ParquetError::Convert(e.to_string()))?;

    let write_error = |reason: String| ParquetError::Write {
        path: path.to_owned(),
        reason,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| write_error(e.to_string()))?;
    }
    let staging = path.with_extension("parquet.partial");
    let file = File::create(&staging).map_err(|e| write_error(e.to_string()))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties))
        .map_err(|e| write_error(e.to_string()))?;
    if let Some(batch) = &batch {
        writer
            .write(batch)
            .map_err(|e| write_error(e.to_string()))?;
    }
    writer.close().map_err(|e| write_error(e.to_string()))?;
    std::fs::rename(&staging, path).map_err(|e| write_error(e.to_string()))?;
    Ok(batch.map_or(0, |b| b.num_rows()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn rows_and_types_survive_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/summary.parquet");
        let records = vec![
            serde_json::json!({"stay_category": "Short stay", "count_all": 3, "count_distinct": 2}),
            serde_json::json!({"stay_category": "Long stay", "count_all": 1, "count_distinct": 1}),
        ];
        assert_eq!(write_json_records(&path, &records).unwrap(), 2);
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 2);
        let schema = batch.schema();
        assert_eq!(
            schema.field_with_name("count_all").unwrap().data_type(),
            &arrow_schema::DataType::Int64
        );
        let categories = batch
            .column_by_name("stay_category")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(categories.value(1), "Long stay");
        assert!(!path.with_extension("parquet.partial").exists());
    }

    #[test]
    fn a_non_object_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_json_records(
            &dir.path().join("x.parquet"),
            &[serde_json::json!({}), serde_json::json!(3)],
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "record 1 is not a JSON object: 3");
    }
}
