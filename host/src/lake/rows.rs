//! An exported Parquet file's rows read back as Kafka records: the
//! metadata columns every export writes (`kafka_offset`, `timestamp`,
//! `key`, `headers`) and the `value` column, text or bytes. Only those
//! columns are read (a file's typed Avro columns are left alone), and only
//! the rows of the offsets asked for are kept.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::record::{Header, KafkaRecord};

/// The columns a record is read back from.
const COLUMNS: [&str; 5] = ["kafka_offset", "timestamp", "key", "headers", "value"];
const BATCH: usize = 4_096;

/// The records of `file` (the bytes of a Parquet file an export wrote for
/// `topic` partition `partition`) whose Kafka offset is in `from..to`, by
/// offset. Anything that is not such a file is an error saying why.
pub(super) fn records_in(
    file: Bytes,
    topic: &str,
    partition: i32,
    (from, to): (i64, i64),
) -> Result<Vec<KafkaRecord>, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let schema = builder.schema().clone();
    let mut roots = Vec::with_capacity(COLUMNS.len());
    for name in COLUMNS {
        let index = schema
            .index_of(name)
            .map_err(|_| format!("no `{name}` column: not a file an export wrote"))?;
        roots.push(index);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH)
        .build()
        .map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        append_rows(&batch, topic, partition, (from, to), &mut records)?;
    }
    records.sort_by_key(|r| r.offset);
    Ok(records)
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
