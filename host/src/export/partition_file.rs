//! One Parquet file of one partition and the dead letters of its range,
//! written under staging names and stored under names that say which
//! offsets they hold, so a reader or a re-run never sees half a file.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, ParquetMetaData};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;

use super::buckets::Location;
use super::dead_letters::DeadLetters;
use super::error::ExportError;
use super::layout::FileNames;
use super::written::{ColumnStats, WrittenFile};
use crate::record::KafkaRecord;

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
    location: Option<Location>,
    /// Rows placed by the late-data policy.
    late: u64,
    /// Key-value metadata the file's footer gets.
    notes: Vec<KeyValue>,
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
        Self::create_at(staging_dir, topic, partition, (block, first), schema, None)
    }

    /// As [`Self::create`], the file of one time folder (`location`) of
    /// its partition's unit.
    pub fn create_at(
        staging_dir: &Path,
        topic: &str,
        partition: i32,
        (block, first): (i64, i64),
        schema: SchemaRef,
        location: Option<Location>,
    ) -> Result<Self, ExportError> {
        std::fs::create_dir_all(staging_dir).map_err(|source| ExportError::Io {
            path: staging_dir.to_owned(),
            source,
        })?;
        // Names put together as text: `Path::with_extension` would cut a
        // topic name at its last dot (`orders.eu+0+5` -> `orders.parquet`),
        // and every partition of such a topic would share one file.
        let stem = match location {
            None => format!("{topic}+{partition}+{first}"),
            Some(at) => format!(
                "{topic}+{partition}+{first}.{}{}",
                at.bucket.start,
                if at.late { ".late" } else { "" }
            ),
        };
        let staging = staging_dir.join(format!("{stem}.parquet.partial"));
        let file = File::create(&staging).map_err(|source| ExportError::Io {
            path: staging.clone(),
            source,
        })?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            // Offsets, timestamps, keys and values are (nearly) all
            // distinct: a dictionary for them only costs a hash per row and
            // its growth (a sixth of the export's time under `perf`), until
            // it overflows and the writer falls back to plain pages; zstd
            // finds what repeats either way. The topic, the partition, the
            // headers and typed value columns keep theirs.
            .set_column_dictionary_enabled(ColumnPath::from("offset"), false)
            .set_column_dictionary_enabled(ColumnPath::from("kafka_offset"), false)
            .set_column_dictionary_enabled(ColumnPath::from("timestamp"), false)
            .set_column_dictionary_enabled(ColumnPath::from("key"), false)
            .set_column_dictionary_enabled(ColumnPath::from("value"), false)
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
            location,
            late: 0,
            notes: Vec::new(),
        })
    }

    /// Where the file goes, when its topic goes by time.
    pub fn location(&self) -> Option<Location> {
        self.location
    }

    /// Counts `rows` placed by the late-data policy.
    pub fn add_late(&mut self, rows: u64) {
        self.late += rows;
    }

    /// Metadata for the file's footer (`sluice.*` keys): what a reader
    /// can learn of how the file was placed.
    pub fn note(&mut self, key: &str, value: impl Into<String>) {
        self.notes.push(KeyValue::new(key.to_owned(), value.into()));
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Which block of offsets the file covers.
    pub fn block(&self) -> i64 {
        self.block
    }

    /// The offset of the last record handled, written or dead-lettered.
    pub fn last(&self) -> i64 {
        self.last
    }

    /// Bytes the file and its dead letters hold on the staging disk (row
    /// groups written out; the open one is in memory, see
    /// [`Self::buffered`]).
    pub fn staged_bytes(&self) -> u64 {
        let data = self.writer.as_ref().map_or(0, ArrowWriter::bytes_written);
        u64::try_from(data).unwrap_or(u64::MAX) + self.dead_letters.bytes()
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

    /// Appends another file's dead letters, as they are (a compaction).
    pub fn append_dead_letters(&mut self, lines: &[u8]) -> Result<(), ExportError> {
        self.dead_letters.append_lines(lines)
    }

    /// Keeps `record` in the range's dead-letter file with the reason.
    pub fn dead_letter(&mut self, record: &KafkaRecord, reason: &str) -> Result<(), ExportError> {
        self.dead_letters.write(record, reason)
    }

    /// Closes the file (and the dead letters), covering the offsets from
    /// its first to `last` (or its last record, if later), named as
    /// `names` says; the caller stores them.
    pub fn finish(mut self, names: &FileNames, last: i64) -> Result<WrittenFile, ExportError> {
        self.last = self.last.max(last);
        let mut writer = self.writer.take().ok_or_else(|| ExportError::Parquet {
            path: self.staging.clone(),
            reason: "closed twice".into(),
        })?;
        if self.location.is_some() {
            self.note("sluice.late_records", self.late.to_string());
        }
        for note in std::mem::take(&mut self.notes) {
            writer.append_key_value_metadata(note);
        }
        let metadata = writer.close().map_err(|e| ExportError::Parquet {
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
            let key = names.dead_letters(
                &self.topic,
                self.partition,
                (self.first, self.last),
                self.location,
            );
            (path, key)
        });
        Ok(WrittenFile {
            staging: self.staging.clone(),
            key: names.data(
                &self.topic,
                self.partition,
                (self.first, self.last),
                self.location,
            ),
            partition: self.partition,
            first: self.first,
            last: self.last,
            rows: self.rows,
            bytes,
            dead_lettered,
            dead_letters,
            stats: column_stats(&metadata),
            location: self.location,
            late: self.late,
            last_time: None,
        })
    }
}

/// [`ColumnStats`] of every top-level integer column of a written file.
/// A row group without statistics for a column leaves that column out:
/// bounds must hold for every row, or not be given.
fn column_stats(metadata: &ParquetMetaData) -> Vec<ColumnStats> {
    let schema = metadata.file_metadata().schema_descr();
    (0..schema.num_columns())
        .filter_map(|index| {
            let column = schema.column(index);
            if column.path().parts().len() != 1 {
                return None;
            }
            let mut stats = ColumnStats {
                column: column.name().to_owned(),
                min: None,
                max: None,
                nulls: 0,
            };
            for group in metadata.row_groups() {
                let (min, max, nulls) = match group.column(index).statistics()? {
                    Statistics::Int32(s) => (
                        s.min_opt().map(|v| i64::from(*v)),
                        s.max_opt().map(|v| i64::from(*v)),
                        s.null_count_opt(),
                    ),
                    Statistics::Int64(s) => (
                        s.min_opt().copied(),
                        s.max_opt().copied(),
                        s.null_count_opt(),
                    ),
                    _ => return None,
                };
                let nulls = nulls?;
                let rows = u64::try_from(group.num_rows()).unwrap_or(0);
                if (min.is_none() || max.is_none()) && nulls < rows {
                    return None; // values without bounds: no bounds at all
                }
                stats.nulls += nulls;
                stats.min = match (stats.min, min) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                stats.max = match (stats.max, max) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            Some(stats)
        })
        .collect()
}

impl Drop for PartitionFile {
    /// A file abandoned by an error leaves no staging file behind.
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.staging);
        }
    }
}
