//! Parquet through the arrow reader, one record batch at a time; each
//! batch's rows become JSON objects with arrow-json (nulls kept as `null`,
//! dates and timestamps as ISO 8601 text, nested columns as objects and
//! arrays). A batch is written as JSON lines once and each row is a slice
//! of that text.

use std::collections::VecDeque;

use arrow_array::RecordBatch;
use arrow_json::writer::{LineDelimited, WriterBuilder};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use super::format::{Format, ReadError};

/// The rows of `input` (a file, read a page at a time), a batch of rows at
/// a time.
pub fn rows<R: ChunkReader + 'static>(input: R) -> Result<ParquetRows, ReadError> {
    let open_error = |reason: String| ReadError::Open {
        format: Format::Parquet,
        reason,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(input)
        .map_err(|e| open_error(e.to_string()))?
        .build()
        .map_err(|e| open_error(e.to_string()))?;
    Ok(ParquetRows {
        reader,
        pending: VecDeque::new(),
        read: 0,
        failed: false,
    })
}

pub struct ParquetRows {
    reader: ParquetRecordBatchReader,
    pending: VecDeque<Bytes>,
    /// Rows taken from the reader so far, to name where an error is.
    read: u64,
    failed: bool,
}

impl Iterator for ParquetRows {
    type Item = Result<Bytes, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.pending.pop_front() {
                return Some(Ok(row));
            }
            if self.failed {
                return None;
            }
            let batch = match self.reader.next()? {
                Ok(batch) => batch,
                Err(e) => return Some(Err(self.fail(e.to_string()))),
            };
            match to_json(&batch) {
                Ok(rows) => {
                    self.read += rows.len() as u64;
                    self.pending.extend(rows);
                }
                Err(reason) => return Some(Err(self.fail(reason))),
            }
        }
    }
}

impl ParquetRows {
    fn fail(&mut self, reason: String) -> ReadError {
        self.failed = true;
        ReadError::Row {
            unit: "row",
            number: self.read + 1,
            reason,
        }
    }
}

fn to_json(batch: &RecordBatch) -> Result<Vec<Bytes>, String> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(Vec::with_capacity(batch.get_array_memory_size()));
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let text = Bytes::from(writer.into_inner());
    // arrow-json escapes a newline inside a string, so each line is a row.
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', &text) {
        if end > start {
            rows.push(text.slice(start..end));
        }
        start = end + 1;
    }
    if start < text.len() {
        rows.push(text.slice(start..));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use parquet::arrow::ArrowWriter;
    use serde_json::{Value, json};

    use super::*;

    fn file(rows: i64) -> Vec<u8> {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        let names: ArrayRef = Arc::new(StringArray::from_iter(
            (0..rows).map(|i| (i % 2 == 0).then(|| format!("n{i}"))),
        ));
        let batch = RecordBatch::try_from_iter([("id", ids), ("name", names)]).unwrap();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        out
    }

    #[test]
    fn rows_in_order_with_nulls_kept() {
        let all: Vec<Value> = rows(Bytes::from(file(3)))
            .unwrap()
            .map(|row| serde_json::from_slice(&row.unwrap()).unwrap())
            .collect();
        assert_eq!(
            all,
            vec![
                json!({"id": 0, "name": "n0"}),
                json!({"id": 1, "name": null}),
                json!({"id": 2, "name": "n2"}),
            ]
        );
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let mut bytes = file(100);
        bytes.truncate(bytes.len() / 2);
        assert!(matches!(
            rows(Bytes::from(bytes)).err(),
            Some(ReadError::Open {
                format: Format::Parquet,
                ..
            })
        ));
    }
}
