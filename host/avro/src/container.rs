//! Avro object container files (`.avro`, as Spark and Kafka Connect write
//! them): `Obj` and 1, a metadata map with the schema and the codec, a
//! 16-byte sync marker, then blocks (a record count, a byte size, the
//! records, possibly compressed, the sync marker again).
//!
//! Read here rather than by apache-avro's `Reader`, which decodes each
//! record itself (recursively, with no depth limit, so the check of
//! `scan.rs` cannot come first) and trusts a block's sizes: a snappy block
//! declaring 4 GiB is allocated as such, and one shorter than its checksum
//! panics. Each record here goes through [`WriterSchema`] like a Kafka
//! value, and a block decompresses to at most [`MAX_BLOCK_BYTES`].

use std::borrow::Cow;

use crate::scan::Cursor;
use crate::{
    BlockError, ContainerError, DatumError, MAX_EMPTY_ITEMS, SchemaError, Value, WriterSchema,
};

/// The most a block may decompress to. Writers cut blocks at tens of
/// kilobytes (Avro's Java writer at 64,000 bytes, fastavro at 16,000); a
/// block past this is a compression bomb or a broken file, not data.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;

const MAGIC: &[u8; 4] = b"Obj\x01";

/// The records of a container file, in file order. Iteration stops after
/// the first error, which names the record it happened at (1-based).
pub struct Container<B> {
    file: B,
    schema: WriterSchema,
    codec: Codec,
    sync: [u8; 16],
    /// Where the next block starts in `file`.
    next_block: usize,
    /// The current block's records (decompressed), where the next record
    /// starts in it, and how many it still holds.
    block: Block,
    at: usize,
    left: u64,
    /// Records read so far, and how many of them took no bytes.
    records: u64,
    empty: usize,
    failed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Null,
    Deflate,
    Snappy,
}

/// A block's records: where they are in the file when stored plain, or
/// decompressed.
enum Block {
    InFile { start: usize, end: usize },
    Decompressed(Vec<u8>),
}

impl<B: AsRef<[u8]>> Container<B> {
    /// Reads the header; fails when `file` is not a container file, or its
    /// schema or codec cannot be used.
    pub fn open(file: B) -> Result<Self, ContainerError> {
        let bytes = file.as_ref();
        let after_magic = bytes
            .strip_prefix(MAGIC)
            .ok_or(ContainerError::NotContainer("it does not start with `Obj` and 1"))?;
        let metadata_schema = WriterSchema::parse(r#"{"type":"map","values":"bytes"}"#)?;
        let (metadata, used) = metadata_schema
            .decode_first(after_magic)
            .map_err(ContainerError::Metadata)?;
        let Value::Map(metadata) = metadata else {
            return Err(ContainerError::NotContainer("its metadata is not a map"));
        };
        let entry = |key: &str| match metadata.get(key) {
            Some(Value::Bytes(value)) => Some(value.as_slice()),
            _ => None,
        };
        let schema_text = entry("avro.schema")
            .ok_or(ContainerError::NotContainer("its header has no avro.schema"))?;
        let schema_text = std::str::from_utf8(schema_text)
            .map_err(|e| SchemaError::Invalid(format!("not UTF-8 text: {e}")))?;
        let schema = WriterSchema::parse(schema_text)?;
        let codec = match entry("avro.codec").map(String::from_utf8_lossy) {
            None => Codec::Null,
            Some(name) => match name.as_ref() {
                "null" => Codec::Null,
                "deflate" => Codec::Deflate,
                "snappy" => Codec::Snappy,
                _ => return Err(ContainerError::Codec(name.into_owned())),
            },
        };
        let start = MAGIC.len() + used;
        let sync = start
            .checked_add(16)
            .and_then(|end| bytes.get(start..end))
            .and_then(|sync| <[u8; 16]>::try_from(sync).ok())
            .ok_or(ContainerError::NotContainer("its header ends before the sync marker"))?;
        Ok(Container {
            file,
            schema,
            codec,
            sync,
            next_block: start + 16,
            block: Block::InFile { start: 0, end: 0 },
            at: 0,
            left: 0,
            records: 0,
            empty: 0,
            failed: false,
        })
    }

    /// The writer schema from the file's header.
    pub fn schema(&self) -> &WriterSchema {
        &self.schema
    }

    fn block_bytes(&self) -> &[u8] {
        match &self.block {
            Block::InFile { start, end } => self.file.as_ref().get(*start..*end),
            Block::Decompressed(bytes) => Some(bytes.as_slice()),
        }
        .unwrap_or_default()
    }

    fn read_next(&mut self) -> Result<Option<Value>, ContainerError> {
        let number = self.records + 1;
        while self.left == 0 {
            let more = self
                .next_block()
                .map_err(|source| ContainerError::Block { number, source })?;
            if !more {
                return Ok(None);
            }
        }
        let rest = self.block_bytes().get(self.at..).unwrap_or_default();
        let (value, used) = self
            .schema
            .decode_first(rest)
            .map_err(|source| ContainerError::Record { number, source })?;
        if used == 0 {
            self.empty += 1;
            if self.empty > MAX_EMPTY_ITEMS {
                return Err(ContainerError::Block {
                    number,
                    source: BlockError::TooManyEmpty {
                        limit: MAX_EMPTY_ITEMS,
                    },
                });
            }
        }
        self.at += used;
        self.left -= 1;
        self.records = number;
        Ok(Some(value))
    }

    /// Reads the next block; `false` at the end of the file.
    fn next_block(&mut self) -> Result<bool, BlockError> {
        let file = self.file.as_ref();
        let mut cursor = Cursor::new(file.get(self.next_block..).unwrap_or_default());
        if cursor.is_empty() {
            return Ok(false);
        }
        let ends_early = |_: DatumError| BlockError::EndsEarly;
        let count = cursor.long("a block's count").map_err(ends_early)?;
        let size = cursor.long("a block's size").map_err(ends_early)?;
        let count = u64::try_from(count).map_err(|_| BlockError::BadCount(count))?;
        let size = usize::try_from(size).map_err(|_| BlockError::BadSize(size))?;
        let start = self.next_block + cursor.at;
        let stored = cursor.take(size, "a block").map_err(ends_early)?;
        if cursor.take(16, "a sync marker").map_err(ends_early)? != self.sync {
            return Err(BlockError::Sync);
        }
        self.block = match decompress(self.codec, stored)? {
            Cow::Borrowed(_) => Block::InFile {
                start,
                end: start + size,
            },
            Cow::Owned(bytes) => Block::Decompressed(bytes),
        };
        self.next_block += cursor.at;
        self.at = 0;
        self.left = count;
        Ok(true)
    }
}

impl<B: AsRef<[u8]>> Iterator for Container<B> {
    type Item = Result<Value, ContainerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.read_next();
        self.failed = next.is_err();
        next.transpose()
    }
}

/// A block's records, at most [`MAX_BLOCK_BYTES`] of them.
fn decompress(codec: Codec, stored: &[u8]) -> Result<Cow<'_, [u8]>, BlockError> {
    let too_large = BlockError::TooLarge {
        limit: MAX_BLOCK_BYTES,
    };
    match codec {
        Codec::Null => Ok(Cow::Borrowed(stored)),
        Codec::Deflate => {
            miniz_oxide::inflate::decompress_to_vec_with_limit(stored, MAX_BLOCK_BYTES)
                .map(Cow::Owned)
                .map_err(|e| match e.status {
                    miniz_oxide::inflate::TINFLStatus::HasMoreOutput => too_large,
                    status => BlockError::Corrupt(format!("deflate: {status:?}")),
                })
        }
        Codec::Snappy => {
            // The compressed bytes, then a CRC-32 of the decompressed ones.
            let Some((compressed, checksum)) = stored.split_last_chunk::<4>() else {
                return Err(BlockError::Corrupt(
                    "snappy: shorter than its checksum".into(),
                ));
            };
            let corrupt = |e: snap::Error| BlockError::Corrupt(format!("snappy: {e}"));
            if snap::raw::decompress_len(compressed).map_err(corrupt)? > MAX_BLOCK_BYTES {
                return Err(too_large);
            }
            let bytes = snap::raw::Decoder::new()
                .decompress_vec(compressed)
                .map_err(corrupt)?;
            if crc32fast::hash(&bytes) != u32::from_be_bytes(*checksum) {
                return Err(BlockError::Corrupt(
                    "snappy: the checksum does not match".into(),
                ));
            }
            Ok(Cow::Owned(bytes))
        }
    }
}
