//! Records of one data file's range that could not be written to it, kept
//! beside the data as JSON lines (key and value in hex, with the reason), so
//! nothing read is lost.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use serde_json::json;

use super::error::ExportError;
use crate::record::KafkaRecord;

pub struct DeadLetters {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    count: u64,
    /// Bytes of the lines written.
    bytes: u64,
}

impl DeadLetters {
    /// Written to `staging`, created on first use.
    pub fn new(staging: PathBuf) -> Self {
        DeadLetters {
            path: staging,
            out: None,
            count: 0,
            bytes: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn write(&mut self, record: &KafkaRecord, reason: &str) -> Result<(), ExportError> {
        tracing::warn!(
            topic = record.topic,
            partition = record.partition,
            offset = record.offset,
            reason,
            file = %self.path.display(),
            "record kept in a dead-letter file"
        );
        let io_error = |source| ExportError::Io {
            path: self.path.clone(),
            source,
        };
        if self.out.is_none() {
            self.out = Some(BufWriter::new(File::create(&self.path).map_err(io_error)?));
        }
        let line = json!({
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp,
            "reason": reason,
            "key_hex": record.key.as_deref().map(hex::encode),
            "value_hex": record.value.as_deref().map(hex::encode),
        });
        let line = line.to_string();
        if let Some(out) = &mut self.out {
            writeln!(out, "{line}").map_err(io_error)?;
        }
        self.count += 1;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    /// Appends dead letters as another file holds them (a compaction
    /// merging files): whole JSON lines, kept as they are.
    pub fn append_lines(&mut self, lines: &[u8]) -> Result<(), ExportError> {
        if lines.is_empty() {
            return Ok(());
        }
        let io_error = |source| ExportError::Io {
            path: self.path.clone(),
            source,
        };
        if self.out.is_none() {
            self.out = Some(BufWriter::new(File::create(&self.path).map_err(io_error)?));
        }
        if let Some(out) = &mut self.out {
            out.write_all(lines).map_err(io_error)?;
            if !lines.ends_with(b"\n") {
                out.write_all(b"\n").map_err(io_error)?;
            }
        }
        self.count += lines
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
        self.bytes += lines.len() as u64;
        Ok(())
    }

    /// Flushes the file; its path when anything was written.
    pub fn finish(mut self) -> Result<Option<PathBuf>, ExportError> {
        let Some(out) = self.out.take() else {
            return Ok(None);
        };
        out.into_inner()
            .map_err(|e| e.into_error())
            .map_err(|source| ExportError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(Some(std::mem::take(&mut self.path)))
    }
}

impl Drop for DeadLetters {
    /// Abandoned by an error: no staging file left behind.
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
