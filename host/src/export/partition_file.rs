//! One Parquet file of one partition and the dead letters of its range,
//! written under staging names and stored under names that say which
//! offsets they hold, so a reader or a re-run never sees half a file.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::dead_letters::DeadLetters;
use super::error::ExportError;
use super::layout;
use crate::record::KafkaRecord;

/// A finished file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Where it was written locally; moved to `key` in storage after.
    pub staging: PathBuf,
    /// `topic=T/partition=P/T+P+<first>-<last>.parquet`.
    pub key: String,
    pub partition: i32,
    /// Kafka offsets of the first and last record of the range the file
    /// covers, dead-lettered records included.
    pub first: i64,
    pub last: i64,
    pub rows: u64,
    pub bytes: u64,
    /// Records of the range kept in the dead-letter file instead.
    pub dead_lettered: u64,
    /// That file's local path and storage key, when there are any.
    pub dead_letters: Option<(PathBuf, String)>,
}

pub struct PartitionFile {
    topic: String,
    partition: i32,
    block: i64,
    staging: PathBuf,
    writer: Option<ArrowWriter<File>>,
    dead_letters: DeadLetters,
    first: i64,
    last: i64,
    rows: u64,
}

/// Rows per row group: bounds the writer's memory whatever the file size.
const ROW_GROUP_ROWS: usize = 64 * 1024;

impl PartitionFile {
    /// Starts the file of offset block `block` at offset `first`.
    pub fn create(
        staging_dir: &Path,
        topic: &str,
        partition: i32,
        block: i64,
        first: i64,
        schema: SchemaRef,
    ) -> Result<Self, ExportError> {
        std::fs::create_dir_all(staging_dir).map_err(|source| ExportError::Io {
            path: staging_dir.to_owned(),
            source,
        })?;
        // Names put together as text: `Path::with_extension` would cut a
        // topic name at its last dot (`orders.eu+0+5` -> `orders.parquet`),
        // and every partition of such a topic would share one file.
        let stem = format!("{topic}+{partition}+{first}");
        let staging = staging_dir.join(format!("{stem}.parquet.partial"));
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
            block,
            staging,
            writer: Some(writer),
            dead_letters: DeadLetters::new(staging_dir.join(format!("{stem}.jsonl.partial"))),
            first,
            last: first,
            rows: 0,
        })
    }

    /// Which block of offsets the file covers.
    pub fn block(&self) -> i64 {
        self.block
    }

    /// Appends rows; `last` is the Kafka offset of the last record handled,
    /// written or dead-lettered.
    pub fn write(&mut self, batch: &RecordBatch, last: i64) -> Result<(), ExportError> {
        let writer = self.writer.as_mut().ok_or_else(|| ExportError::Parquet {
            path: self.staging.clone(),
            reason: "written after close".into(),
        })?;
        if batch.num_rows() > 0 {
            writer.write(batch).map_err(|e| ExportError::Parquet {
                path: self.staging.clone(),
                reason: e.to_string(),
            })?;
        }
        self.rows += batch.num_rows() as u64;
        self.last = self.last.max(last);
        Ok(())
    }

    /// Bytes the open row group holds in memory.
    pub fn buffered(&self) -> usize {
        self.writer.as_ref().map_or(0, ArrowWriter::memory_size)
    }

    /// Writes the open row group out, freeing its memory.
    pub fn flush_row_group(&mut self) -> Result<(), ExportError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        writer.flush().map_err(|e| ExportError::Parquet {
            path: self.staging.clone(),
            reason: e.to_string(),
        })
    }

    /// Keeps `record` in the range's dead-letter file with the reason.
    pub fn dead_letter(&mut self, record: &KafkaRecord, reason: &str) -> Result<(), ExportError> {
        self.dead_letters.write(record, reason)
    }

    /// Closes the file (and the dead letters); the caller stores them.
    pub fn finish(mut self) -> Result<WrittenFile, ExportError> {
        let writer = self.writer.take().ok_or_else(|| ExportError::Parquet {
            path: self.staging.clone(),
            reason: "closed twice".into(),
        })?;
        writer.close().map_err(|e| ExportError::Parquet {
            path: self.staging.clone(),
            reason: e.to_string(),
        })?;
        let bytes = std::fs::metadata(&self.staging)
            .map(|m| m.len())
            .map_err(|source| ExportError::Io {
                path: self.staging.clone(),
                source,
            })?;
        let dead_lettered = self.dead_letters.count();
        let dead_letters =
            std::mem::replace(&mut self.dead_letters, DeadLetters::new(PathBuf::new()));
        let dead_letters = dead_letters.finish()?.map(|path| {
            let key = layout::dead_letter_key(&self.topic, self.partition, self.first, self.last);
            (path, key)
        });
        Ok(WrittenFile {
            staging: self.staging.clone(),
            key: layout::data_key(&self.topic, self.partition, self.first, self.last),
            partition: self.partition,
            first: self.first,
            last: self.last,
            rows: self.rows,
            bytes,
            dead_lettered,
            dead_letters,
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
