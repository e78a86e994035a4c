//! An exported Parquet file's rows read back as Kafka records: the
//! metadata columns every export writes (`kafka_offset`, `timestamp`,
//! `key`, `headers`) and the `value` column, text or bytes. Only what is
//! needed is fetched from the store: the footer, then the chunks of those
//! columns (never a file's typed Avro columns) in the row groups whose
//! `kafka_offset` bounds meet the offsets asked for; a file of a million
//! records costs a fetch of ten what its row group of the ten costs.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::{Buf, Bytes};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::statistics::Statistics;

use super::LakeError;
use crate::record::{Header, KafkaRecord};

/// The columns a record is read back from.
const COLUMNS: [&str; 5] = ["kafka_offset", "timestamp", "key", "headers", "value"];
const BATCH: usize = 4_096;
/// Bytes fetched from a file's end first: its footer, in one request
/// unless the footer is larger.
const TAIL: u64 = 64 * 1024;

/// The records of a Parquet file an export wrote for `topic` partition
/// `partition`, of `len` bytes, whose Kafka offset is in `from..to`, by
/// offset; `fetch` gets ranges of its bytes. The outer error is the
/// store's; the inner, why the file is not such a file.
pub(super) fn records_in(
    len: u64,
    fetch: impl Fn(&[Range<u64>]) -> Result<Vec<Bytes>, LakeError>,
    topic: &str,
    partition: i32,
    (from, to): (i64, i64),
) -> Result<Result<Vec<KafkaRecord>, String>, LakeError> {
    let mut parts = Parts {
        len,
        held: Vec::new(),
    };
    let tail_start = len.saturating_sub(TAIL);
    let tail = fetch(std::slice::from_ref(&(tail_start..len)))?
        .pop()
        .unwrap_or_default();
    let Some(footer) = tail
        .len()
        .checked_sub(8)
        .and_then(|at| tail.get(at..at + 4))
    else {
        return Ok(Err(format!("{len} bytes: too short for a Parquet file")));
    };
    let metadata_len = u64::from(u32::from_le_bytes([
        footer[0], footer[1], footer[2], footer[3],
    ]));
    let footer_start = len.saturating_sub(metadata_len.saturating_add(8));
    parts.held.push((tail_start, tail));
    if footer_start < tail_start {
        let rest = fetch(std::slice::from_ref(&(footer_start..tail_start)))?
            .pop()
            .unwrap_or_default();
        parts.held.push((footer_start, rest));
    }
    let read = || -> Result<Vec<KafkaRecord>, ParquetError> {
        let metadata = ParquetMetaDataReader::new().parse_and_finish(&parts)?;
        let metadata = ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())?;
        let mut roots = Vec::with_capacity(COLUMNS.len());
        for name in COLUMNS {
            let index = metadata.schema().index_of(name).map_err(|_| {
                ParquetError::General(format!("no `{name}` column: not a file an export wrote"))
            })?;
            roots.push(index);
        }
        let file = metadata.metadata().clone();
        let schema = file.file_metadata().schema_descr();
        let offsets_leaf = schema
            .columns()
            .iter()
            .position(|c| c.path().parts() == ["kafka_offset"]);
        let mut groups = Vec::new();
        let mut chunks = Vec::new();
        for (index, group) in file.row_groups().iter().enumerate() {
            let bounds = offsets_leaf
                .and_then(|leaf| group.columns().get(leaf)?.statistics())
                .and_then(|stats| match stats {
                    Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
                    _ => None,
                });
            if bounds.is_some_and(|(min, max)| max < from || min >= to) {
                continue;
            }
            groups.push(index);
            for column in group.columns() {
                let root = column.column_descr().path().parts().first().cloned();
                if root.is_some_and(|r| COLUMNS.contains(&r.as_str())) {
                    let (start, length) = column.byte_range();
                    chunks.push(start..start.saturating_add(length));
                }
            }
        }
        let fetched = fetch(&chunks).map_err(|e| ParquetError::External(Box::new(e)))?;
        parts
            .held
            .extend(chunks.iter().map(|c| c.start).zip(fetched));
        let mask = ProjectionMask::roots(metadata.parquet_schema(), roots);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(parts, metadata)
            .with_projection(mask)
            .with_row_groups(groups)
            .with_batch_size(BATCH)
            .build()?;
        let mut records = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| ParquetError::General(e.to_string()))?;
            append_rows(&batch, topic, partition, (from, to), &mut records)
                .map_err(ParquetError::General)?;
        }
        records.sort_by_key(|r| r.offset);
        Ok(records)
    };
    match read() {
        Ok(records) => Ok(Ok(records)),
        Err(ParquetError::External(error)) => match error.downcast::<LakeError>() {
            Ok(store) => Err(*store),
            Err(other) => Ok(Err(other.to_string())),
        },
        Err(error) => Ok(Err(error.to_string())),
    }
}

/// The parts of a file fetched so far, each at its offset in the file:
/// what the Parquet reader reads from, never the whole file.
struct Parts {
    len: u64,
    held: Vec<(u64, Bytes)>,
}

impl Parts {
    /// The fetched bytes from `start` to the end of the part holding it,
    /// at least `length` of them.
    fn from(&self, start: u64, length: u64) -> Result<Bytes, ParquetError> {
        self.held
            .iter()
            .find_map(|(at, bytes)| {
                let skip = usize::try_from(start.checked_sub(*at)?).ok()?;
                let end = skip.checked_add(usize::try_from(length).ok()?)?;
                // A part ending where `start` begins holds none of it.
                (skip < bytes.len() && end <= bytes.len()).then(|| bytes.slice(skip..))
            })
            .ok_or_else(|| {
                ParquetError::General(format!(
                    "bytes {start}..{} of the file were not fetched",
                    start.saturating_add(length)
                ))
            })
    }
}

impl Length for Parts {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Parts {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        Ok(self.from(start, 0)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        if length == 0 {
            return Ok(Bytes::new());
        }
        let held = self.from(start, length as u64)?;
        Ok(held.slice(..length))
    }
}

fn append_rows(
    batch: &RecordBatch,
    topic: &str,
    partition: i32,
    (from, to): (i64, i64),
    out: &mut Vec<KafkaRecord>,
) -> Result<(), String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("no `{name}` column"))
    };
    let offsets = column("kafka_offset")?
        .as_primitive_opt::<Int64Type>()
        .ok_or("`kafka_offset` is not a 64-bit integer")?;
    let times = column("timestamp")?;
    let keys = column("key")?
        .as_binary_opt::<i32>()
        .ok_or("`key` is not binary")?;
    let headers = column("headers")?
        .as_map_opt()
        .ok_or("`headers` is not a map")?;
    let header_keys = headers
        .keys()
        .as_string_opt::<i32>()
        .ok_or("`headers` keys are not text")?;
    let header_values = headers
        .values()
        .as_binary_opt::<i32>()
        .ok_or("`headers` values are not binary")?;
    let values = column("value")?;
    for row in 0..batch.num_rows() {
        if offsets.is_null(row) {
            return Err(format!("row {row} has no `kafka_offset`"));
        }
        let offset = offsets.value(row);
        if offset < from || offset >= to {
            continue;
        }
        let timestamp = if times.is_null(row) {
            None
        } else {
            Some(millis(times.as_ref(), row)?)
        };
        let range = headers.value_offsets();
        let (start, end) = match (range.get(row), range.get(row + 1)) {
            (Some(start), Some(end)) => (*start as usize, *end as usize),
            _ => return Err(format!("row {row}: `headers` out of bounds")),
        };
        let headers = (start..end)
            .map(|i| Header {
                key: header_keys.value(i).to_owned(),
                value: (!header_values.is_null(i)).then(|| header_values.value(i).to_vec()),
            })
            .collect();
        out.push(KafkaRecord {
            topic: topic.to_owned(),
            partition,
            offset,
            timestamp,
            key: (!keys.is_null(row)).then(|| keys.value(row).to_vec()),
            value: value_of(values.as_ref(), row)?,
            headers,
        });
    }
    Ok(())
}

/// A row's time in milliseconds: plain files keep milliseconds, a Delta
/// table's files microseconds (whole milliseconds, as Kafka gave them).
fn millis(column: &dyn Array, row: usize) -> Result<i64, String> {
    match column.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Ok(column.as_primitive::<TimestampMillisecondType>().value(row))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => Ok(column
            .as_primitive::<TimestampMicrosecondType>()
            .value(row)
            .div_euclid(1000)),
        other => Err(format!("`timestamp` is {other}, not a timestamp")),
    }
}

/// The value as exported: JSON text (a JSON topic's value as it was, an
/// Avro topic's decoded) or the raw bytes.
fn value_of(column: &dyn Array, row: usize) -> Result<Option<Vec<u8>>, String> {
    if column.is_null(row) {
        return Ok(None);
    }
    match column.data_type() {
        DataType::Utf8 => Ok(Some(
            column.as_string::<i32>().value(row).as_bytes().to_vec(),
        )),
        DataType::Binary => Ok(Some(column.as_binary::<i32>().value(row).to_vec())),
        other => Err(format!("`value` is {other}, neither text nor bytes")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;
    use crate::table::{Timestamps, ValueColumn, kafka_batch};

    fn record(offset: i64) -> KafkaRecord {
        KafkaRecord {
            topic: "t".into(),
            partition: 3,
            offset,
            timestamp: Some(1_700_000_000_000 + offset),
            key: Some(format!("k{offset}").into_bytes()),
            value: Some(format!(r#"{{"i":{offset},"pad":"{}"}}"#, noise(offset)).into_bytes()),
            headers: vec![
                Header {
                    key: "h".into(),
                    value: Some(vec![0, 159, 146, 150]),
                },
                Header {
                    key: "h".into(),
                    value: None,
                },
            ],
        }
    }

    /// A thousand hex digits that do not compress: the row groups, not
    /// the footer, are most of the file.
    fn noise(seed: i64) -> String {
        let mut state = seed as u64 ^ 0x9E37_79B9_7F4A_7C15;
        (0..125)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                format!("{:08x}", state >> 32)
            })
            .collect()
    }

    /// A file as the export writes it, with row groups of ten records, the
    /// offsets written 1000 higher than read (`offset_increment`).
    fn file(records: &[KafkaRecord]) -> Bytes {
        let batch = kafka_batch(records, ValueColumn::Json, Timestamps::Micros, |_, o| {
            o + 1000
        })
        .unwrap();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(10))
            .build();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(properties)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        Bytes::from(out)
    }

    #[test]
    fn only_the_footer_and_the_row_groups_of_the_offsets_asked_are_fetched() {
        // Offsets 0-399 but 120-124 (compacted away before the export).
        let records: Vec<KafkaRecord> = (0..400)
            .filter(|o| !(120..125).contains(o))
            .map(record)
            .collect();
        let bytes = file(&records);
        let fetched = Mutex::new(0u64);
        let fetch = |ranges: &[Range<u64>]| {
            let mut parts = Vec::new();
            for range in ranges {
                *fetched.lock().unwrap() += range.end - range.start;
                parts.push(bytes.slice(range.start as usize..range.end as usize));
            }
            Ok(parts)
        };
        let len = bytes.len() as u64;
        let read = records_in(len, fetch, "t", 3, (118, 127)).unwrap().unwrap();
        let expected: Vec<KafkaRecord> = [118, 119, 125, 126].map(record).to_vec();
        assert_eq!(
            read, expected,
            "as written: Kafka's offsets, headers in order"
        );
        let fetched = *fetched.lock().unwrap();
        assert!(
            fetched * 4 < len,
            "{fetched} of {len} bytes fetched for two row groups of forty"
        );
        // Bytes that are no Parquet file say so.
        let junk = Bytes::from_static(b"not a parquet file at all");
        let fetch = |ranges: &[Range<u64>]| {
            Ok(ranges
                .iter()
                .map(|r| junk.slice(r.start as usize..r.end as usize))
                .collect())
        };
        let error = records_in(junk.len() as u64, fetch, "t", 3, (0, 1))
            .unwrap()
            .unwrap_err();
        assert!(!error.is_empty());
    }
}
