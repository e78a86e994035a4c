//! Reading a file's rows with the reader its format names.

use bytes::Bytes;

use super::format::{Format, ReadError, Rows};
use super::{avro, jsonl, parquet_file};

impl Format {
    /// The file's rows in order, each as JSON text. Opening fails when the file is
    /// not of this format at all; a bad row later surfaces as an `Err` item
    /// naming its position, after which the iterator ends.
    pub fn rows(self, bytes: Bytes) -> Result<Rows, ReadError> {
        match self {
            Format::JsonLines => Ok(Box::new(jsonl::rows(bytes))),
            Format::Avro => Ok(Box::new(avro::rows(bytes)?)),
            Format::Parquet => Ok(Box::new(parquet_file::rows(bytes)?)),
        }
    }
}
