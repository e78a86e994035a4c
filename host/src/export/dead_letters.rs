//! Records the export could not decode, kept beside the data as JSON lines
//! (value in hex, with the reason), so nothing read is lost.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::topic::ExportError;
use crate::parquet::Rejected;
use crate::record::KafkaRecord;
use crate::storage::Storage;

pub struct DeadLetters {
    path: PathBuf,
    key: String,
    out: Option<BufWriter<File>>,
    pub count: u64,
}

impl DeadLetters {
    /// Stored as `_dead_letters/topic=T/<run id>.jsonl`, created on first use.
    pub fn new(staging_dir: &Path, topic: &str, run_id: &str) -> Self {
        DeadLetters {
            path: staging_dir.join(format!("{topic}.dead-letters.jsonl")),
            key: format!("_dead_letters/topic={topic}/{run_id}.jsonl"),
            out: None,
            count: 0,
        }
    }

    pub fn write(&mut self, rejected: &Rejected, record: &KafkaRecord) -> Result<(), ExportError> {
        tracing::warn!(
            topic = record.topic,
            partition = rejected.partition,
            offset = rejected.offset,
            reason = rejected.reason,
            "record not exported; kept in the dead-letter file"
        );
        let io_error = |source| ExportError::Io {
            path: self.path.clone(),
            source,
        };
        if self.out.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(io_error)?;
            }
            self.out = Some(BufWriter::new(File::create(&self.path).map_err(io_error)?));
        }
        let line = json!({
            "topic": record.topic,
            "partition": rejected.partition,
            "offset": rejected.offset,
            "reason": rejected.reason,
            "key_hex": record.key.as_deref().map(hex::encode),
            "value_hex": record.value.as_deref().map(hex::encode),
        });
        if let Some(out) = &mut self.out {
            writeln!(out, "{line}").map_err(io_error)?;
        }
        self.count += 1;
        Ok(())
    }

    /// Stores the file, if anything was written; returns its key.
    pub fn finish(self, storage: &Storage) -> Result<Option<String>, ExportError> {
        let Some(mut out) = self.out else {
            return Ok(None);
        };
        out.flush().map_err(|source| ExportError::Io {
            path: self.path.clone(),
            source,
        })?;
        drop(out);
        storage.upload(&self.path, &self.key)?;
        Ok(Some(self.key))
    }
}
