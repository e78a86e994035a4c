//! One Parquet file of one partition, written under a staging name and
//! renamed to its final name (with the last offset) when complete, so a
//! reader or a re-run never sees half a file.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::topic::ExportError;

/// A finished file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Where it was written locally; moved to `key` in storage after.
    pub staging: PathBuf,
    /// `topic=T/partition=P/T+P+<first>-<last>.parquet`.
    pub key: String,
    pub partition: i32,
    /// Kafka offsets of the first and last record in the file.
    pub first: i64,
    pub last: i64,
    pub rows: u64,
    pub bytes: u64,
}

pub struct PartitionFile {
    topic: String,
    partition: i32,
    staging: PathBuf,
    writer: Option<ArrowWriter<File>>,
    first: i64,
    last: i64,
    rows: u64,
}

/// Rows per row group: bounds the writer's memory whatever the file size.
const ROW_GROUP_ROWS: usize = 64 * 1024;

impl PartitionFile {
    /// Starts a file in `staging_dir`.
    pub fn create(
        staging_dir: &Path,
        topic: &str,
        partition: i32,
        first: i64,
        schema: SchemaRef,
    ) -> Result<Self, ExportError> {
        std::fs::create_dir_all(staging_dir).map_err(|source| ExportError::Io {
            path: staging_dir.to_owned(),
            source,
        })?;
        let staging = staging_dir.join(format!("{topic}+{partition}+{first}.parquet.partial"));
        let file = File::create(&staging).map_err(|source| ExportError::Io {
            path: staging.clone(),
            source,
        })?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(properties)).map_err(|e| {
            ExportError::Parquet {
                path: staging.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(PartitionFile {
            topic: topic.to_owned(),
            partition,
            staging,
            writer: Some(writer),
            first,
            last: first,
            rows: 0,
        })
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends rows; `last` is the Kafka offset of the last record handled.
    pub fn write(&mut self, batch: &RecordBatch, last: i64) -> Result<(), ExportError> {
        let writer = self.writer.as_mut().ok_or_else(|| ExportError::Parquet {
            path: self.staging.clone(),
            reason: "written after close".into(),
        })?;
        writer.write(batch).map_err(|e| ExportError::Parquet {
            path: self.staging.clone(),
            reason: e.to_string(),
        })?;
        self.rows += batch.num_rows() as u64;
        self.last = last;
        Ok(())
    }

    /// Closes the file; the caller moves it to its key.
    pub fn finish(mut self) -> Result<WrittenFile, ExportError> {
        let writer = self.writer.take().ok_or_else(|| ExportError::Parquet {
            path: self.staging.clone(),
            reason: "closed twice".into(),
        })?;
        writer.close().map_err(|e| ExportError::Parquet {
            path: self.staging.clone(),
            reason: e.to_string(),
        })?;
        let key = format!(
            "topic={topic}/partition={partition}/{topic}+{partition}+{first}-{last}.parquet",
            topic = self.topic,
            partition = self.partition,
            first = self.first,
            last = self.last,
        );
        let bytes = std::fs::metadata(&self.staging)
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(WrittenFile {
            staging: self.staging.clone(),
            key,
            partition: self.partition,
            first: self.first,
            last: self.last,
            rows: self.rows,
            bytes,
        })
    }
}

impl Drop for PartitionFile {
    /// A file abandoned by an error leaves no staging file behind.
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.staging);
        }
    }
}
