//! The records an aggregator's window has taken so far, kept on disk so the
//! window can be rebuilt after a trap. A trapped instance loses its state,
//! and the guest's state cannot be copied out; replaying what it was given
//! into a fresh instance is the only way to get it back without the record
//! that trapped. On disk (a temporary file, zstd-compressed), because a
//! window is one export run and may hold more records than memory should.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use crate::record::KafkaRecord;

#[derive(Debug, thiserror::Error)]
#[error("the aggregator's journal (a temporary file): {0}")]
pub struct JournalError(String);

impl JournalError {
    pub fn new(reason: impl Into<String>) -> Self {
        JournalError(reason.into())
    }
}

impl From<std::io::Error> for JournalError {
    fn from(error: std::io::Error) -> Self {
        JournalError(error.to_string())
    }
}

/// Batches appended in order; read back in the same order.
pub struct Journal {
    /// `None` until the first batch: most windows never need one read.
    writer: Option<zstd::stream::write::Encoder<'static, BufWriter<File>>>,
    batches: u64,
}

impl Journal {
    pub fn new() -> Self {
        Journal {
            writer: None,
            batches: 0,
        }
    }

    /// Keeps `batch` (as the guest took it) for a replay.
    pub fn append(&mut self, batch: &[KafkaRecord]) -> Result<(), JournalError> {
        if batch.is_empty() {
            return Ok(());
        }
        let bytes = postcard::to_stdvec(batch).map_err(|e| JournalError(e.to_string()))?;
        let length = u32::try_from(bytes.len())
            .map_err(|_| JournalError(format!("a batch of {} bytes is too large", bytes.len())))?;
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => {
                let file = tempfile::tempfile()?;
                // Level 1: the journal is written for every record and
                // read only after a trap.
                self.writer
                    .insert(zstd::stream::write::Encoder::new(BufWriter::new(file), 1)?)
            }
        };
        writer.write_all(&length.to_le_bytes())?;
        writer.write_all(&bytes)?;
        self.batches += 1;
        Ok(())
    }

    /// Every batch appended so far, in order, passed to `each`. The journal
    /// can be appended to again afterwards.
    pub fn replay(
        &mut self,
        mut each: impl FnMut(Vec<KafkaRecord>) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        // Finish the compressed frame, read it back, then start a new
        // frame after it: zstd decodes concatenated frames as one stream.
        let mut file = writer
            .finish()?
            .into_inner()
            .map_err(|e| JournalError(e.error().to_string()))?;
        file.seek(SeekFrom::Start(0))?;
        let mut reader = zstd::stream::read::Decoder::new(BufReader::new(&file))?;
        for _ in 0..self.batches {
            let mut length = [0u8; 4];
            reader.read_exact(&mut length)?;
            let mut bytes = vec![0u8; u32::from_le_bytes(length) as usize];
            reader.read_exact(&mut bytes)?;
            let batch: Vec<KafkaRecord> =
                postcard::from_bytes(&bytes).map_err(|e| JournalError(e.to_string()))?;
            each(batch)?;
        }
        drop(reader);
        file.seek(SeekFrom::End(0))?;
        self.writer = Some(zstd::stream::write::Encoder::new(BufWriter::new(file), 1)?);
        Ok(())
    }
}

impl Default for Journal {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(from: i64, count: i64) -> Vec<KafkaRecord> {
        (from..from + count)
            .map(|offset| {
                let mut record = KafkaRecord::from_value(
                    "t",
                    offset,
                    format!("{{\"n\":{offset}}}").into_bytes(),
                );
                record.key = Some(vec![1, 2, 3]);
                record.headers = vec![crate::record::Header {
                    key: "h".into(),
                    value: None,
                }];
                record
            })
            .collect()
    }

    fn replayed(journal: &mut Journal) -> Vec<KafkaRecord> {
        let mut all = Vec::new();
        journal
            .replay(|batch| {
                all.extend(batch);
                Ok(())
            })
            .unwrap();
        all
    }

    #[test]
    fn batches_come_back_in_order_and_appending_goes_on_after_a_replay() {
        let mut journal = Journal::new();
        assert!(replayed(&mut journal).is_empty());
        journal.append(&batch(0, 3)).unwrap();
        journal.append(&[]).unwrap();
        journal.append(&batch(3, 2)).unwrap();
        assert_eq!(replayed(&mut journal), batch(0, 5));
        journal.append(&batch(5, 4)).unwrap();
        assert_eq!(replayed(&mut journal), batch(0, 9));
        assert_eq!(replayed(&mut journal), batch(0, 9));
    }
}
