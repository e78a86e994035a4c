//! Reading a file's rows with the reader its format names, from the file
//! on disk: JSON lines and Avro through a buffered reader, Parquet a page
//! at a time. Memory holds a buffer, a block or a page, never the file.

use std::fs::File;
use std::io::{BufReader, Seek};

use super::format::{Format, ReadError, Rows};
use super::{avro, jsonl, parquet_file};

/// Bytes read from the file at a time by the JSON lines and Avro readers.
const READ_BUFFER: usize = 256 << 10;

impl Format {
    /// The file's rows in order, from its start, each as JSON text.
    /// Opening fails when the file is not of this format at all; a bad row
    /// later surfaces as an `Err` item naming its position, after which the
    /// iterator ends. Each call reads the file again from its start.
    pub fn rows(self, file: &File) -> Result<Rows, ReadError> {
        let input = file
            .try_clone()
            .and_then(|mut input| input.rewind().map(|()| input))
            .map_err(|e| ReadError::Open {
                format: self,
                reason: format!("reading: {e}"),
            })?;
        match self {
            Format::JsonLines => Ok(Box::new(jsonl::rows(BufReader::with_capacity(
                READ_BUFFER,
                input,
            )))),
            Format::Avro => Ok(Box::new(avro::rows(BufReader::with_capacity(
                READ_BUFFER,
                input,
            ))?)),
            Format::Parquet => Ok(Box::new(parquet_file::rows(input)?)),
        }
    }
}
