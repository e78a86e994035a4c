//! Avro object container files (`.avro`, as Spark and Kafka Connect write
//! them): `Obj` and 1, a metadata map with the schema and the codec, a
//! 16-byte sync marker, then blocks (a record count, a byte size, the
//! records, possibly compressed, the sync marker again). Read from a
//! stream a block at a time, so memory holds one block, never the file.
//!
//! Read here rather than by apache-avro's `Reader`, which decodes each
//! record itself (recursively, with no depth limit, so the check of
//! `scan.rs` cannot come first) and trusts a block's sizes: a snappy block
//! declaring 4 GiB is allocated as such, and one shorter than its checksum
//! panics. Each record here goes through [`WriterSchema`] like a Kafka
//! value, and a block is at most [`MAX_BLOCK_BYTES`], stored or
//! decompressed.

use std::collections::HashMap;
use std::io::{self, Read};

use crate::{
    BlockError, ContainerError, DatumError, MAX_EMPTY_ITEMS, SchemaError, Value, WriterSchema,
};

/// The most a block may hold, stored or decompressed. Writers cut blocks
/// at tens of kilobytes (Avro's Java writer at 64,000 bytes, fastavro at
/// 16,000); a block past this is a compression bomb or a broken file, not
/// data.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;

const MAGIC: &[u8; 4] = b"Obj\x01";

/// The records of a container file, in file order. Iteration stops after
/// the first error, which names the record it happened at (1-based).
pub struct Container<R> {
    input: R,
    schema: WriterSchema,
    codec: Codec,
    sync: [u8; 16],
    /// The current block's records (decompressed), where the next record
    /// starts in it, and how many it still holds.
    block: Vec<u8>,
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

impl<R: Read> Container<R> {
    /// Reads the header; fails when `input` is not a container file, or
    /// its schema or codec cannot be used.
    pub fn open(mut input: R) -> Result<Self, ContainerError> {
        let mut magic = [0u8; 4];
        read_exact(&mut input, &mut magic).map_err(|fault| match fault {
            Fault::Io(e) => ContainerError::Read(e.to_string()),
            _ => ContainerError::NotContainer("it is shorter than a header"),
        })?;
        if &magic != MAGIC {
            return Err(ContainerError::NotContainer(
                "it does not start with `Obj` and 1",
            ));
        }
        let metadata = read_metadata(&mut input)?;
        let schema_text = metadata
            .get("avro.schema")
            .ok_or(ContainerError::NotContainer(
                "its header has no avro.schema",
            ))?;
        let schema_text = std::str::from_utf8(schema_text)
            .map_err(|e| SchemaError::Invalid(format!("not UTF-8 text: {e}")))?;
        let schema = WriterSchema::parse(schema_text)?;
        let codec = match metadata
            .get("avro.codec")
            .map(|c| String::from_utf8_lossy(c))
        {
            None => Codec::Null,
            Some(name) => match name.as_ref() {
                "null" => Codec::Null,
                "deflate" => Codec::Deflate,
                "snappy" => Codec::Snappy,
                _ => return Err(ContainerError::Codec(name.into_owned())),
            },
        };
        let mut sync = [0u8; 16];
        read_exact(&mut input, &mut sync).map_err(|fault| match fault {
            Fault::Io(e) => ContainerError::Read(e.to_string()),
            _ => ContainerError::NotContainer("its header ends before the sync marker"),
        })?;
        Ok(Container {
            input,
            schema,
            codec,
            sync,
            block: Vec::new(),
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
        let rest = self.block.get(self.at..).unwrap_or_default();
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
        let block_fault = |fault: Fault| match fault {
            Fault::Io(e) => BlockError::Read(e.to_string()),
            Fault::EndsEarly | Fault::LongVarint => BlockError::EndsEarly,
        };
        let Some(count) = read_long(&mut self.input).map_err(block_fault)? else {
            return Ok(false);
        };
        let size = read_long(&mut self.input)
            .map_err(block_fault)?
            .ok_or(BlockError::EndsEarly)?;
        let count = u64::try_from(count).map_err(|_| BlockError::BadCount(count))?;
        let size = usize::try_from(size).map_err(|_| BlockError::BadSize(size))?;
        if size > MAX_BLOCK_BYTES {
            return Err(BlockError::TooLarge {
                limit: MAX_BLOCK_BYTES,
            });
        }
        let stored = read_bytes(&mut self.input, size).map_err(block_fault)?;
        let mut sync = [0u8; 16];
        read_exact(&mut self.input, &mut sync).map_err(block_fault)?;
        if sync != self.sync {
            return Err(BlockError::Sync);
        }
        self.block = decompress(self.codec, stored)?;
        self.at = 0;
        self.left = count;
        Ok(true)
    }
}

impl<R: Read> Iterator for Container<R> {
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

/// The header's metadata map (`avro.schema`, `avro.codec`, the writer's
/// own keys), at most [`MAX_BLOCK_BYTES`] of it.
fn read_metadata(input: &mut impl Read) -> Result<HashMap<String, Vec<u8>>, ContainerError> {
    let fault = |what: &'static str| {
        move |fault: Fault| match fault {
            Fault::Io(e) => ContainerError::Read(e.to_string()),
            Fault::EndsEarly => ContainerError::Metadata(DatumError::EndsEarly { what }),
            Fault::LongVarint => ContainerError::Metadata(DatumError::LongVarint),
        }
    };
    let mut metadata = HashMap::new();
    let mut total = 0usize;
    loop {
        let count = read_long(input)
            .map_err(fault("a map"))?
            .ok_or(ContainerError::Metadata(DatumError::EndsEarly {
                what: "a map",
            }))?;
        if count == 0 {
            return Ok(metadata);
        }
        if count < 0 {
            read_long(input).map_err(fault("a map"))?;
        }
        for _ in 0..count.unsigned_abs() {
            let mut entry = [Vec::new(), Vec::new()];
            for (part, what) in entry.iter_mut().zip(["a map key", "a map value"]) {
                let length = read_long(input)
                    .map_err(fault(what))?
                    .ok_or(ContainerError::Metadata(DatumError::EndsEarly { what }))?;
                let length = usize::try_from(length).map_err(|_| {
                    ContainerError::Metadata(DatumError::NegativeLength { what, length })
                })?;
                total = total.saturating_add(length);
                if total > MAX_BLOCK_BYTES {
                    return Err(ContainerError::NotContainer(
                        "its header holds more than 64 MiB",
                    ));
                }
                *part = read_bytes(input, length).map_err(fault(what))?;
            }
            let [key, value] = entry;
            metadata.insert(String::from_utf8_lossy(&key).into_owned(), value);
        }
    }
}

/// Why a read from the stream stopped.
enum Fault {
    EndsEarly,
    LongVarint,
    Io(io::Error),
}

fn read_exact(input: &mut impl Read, buf: &mut [u8]) -> Result<(), Fault> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Fault::EndsEarly,
        _ => Fault::Io(e),
    })
}

/// `length` bytes, allocated as they arrive rather than as claimed.
fn read_bytes(input: &mut impl Read, length: usize) -> Result<Vec<u8>, Fault> {
    let mut bytes = Vec::new();
    input
        .take(length as u64)
        .read_to_end(&mut bytes)
        .map_err(Fault::Io)?;
    if bytes.len() < length {
        return Err(Fault::EndsEarly);
    }
    Ok(bytes)
}

/// A zigzag variable-length long of at most ten bytes; `None` when the
/// stream ends before its first byte.
fn read_long(input: &mut impl Read) -> Result<Option<i64>, Fault> {
    let mut z: u64 = 0;
    for (index, shift) in (0..70).step_by(7).enumerate() {
        let mut byte = [0u8];
        if let Err(fault) = read_exact(input, &mut byte) {
            return match fault {
                Fault::EndsEarly if index == 0 => Ok(None),
                fault => Err(fault),
            };
        }
        z |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(Some(((z >> 1) as i64) ^ -((z & 1) as i64)));
        }
    }
    Err(Fault::LongVarint)
}

/// A block's records, at most [`MAX_BLOCK_BYTES`] of them.
fn decompress(codec: Codec, stored: Vec<u8>) -> Result<Vec<u8>, BlockError> {
    let too_large = BlockError::TooLarge {
        limit: MAX_BLOCK_BYTES,
    };
    match codec {
        Codec::Null => Ok(stored),
        Codec::Deflate => {
            miniz_oxide::inflate::decompress_to_vec_with_limit(&stored, MAX_BLOCK_BYTES).map_err(
                |e| match e.status {
                    miniz_oxide::inflate::TINFLStatus::HasMoreOutput => too_large,
                    status => BlockError::Corrupt(format!("deflate: {status:?}")),
                },
            )
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
            Ok(bytes)
        }
    }
}
