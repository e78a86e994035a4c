//! Kafka records as an Arrow table: the metadata columns every export has
//! (topic, partition, offset as written and as read, timestamp, key,
//! headers) and the value, as JSON text or raw bytes.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, MapBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::record::KafkaRecord;

/// How a record's value lands in the `value` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueColumn {
    /// Checked to be JSON, stored as text.
    Json,
    /// Stored as the bytes it is.
    Raw,
}

/// The unit of the `timestamp` column. Kafka keeps milliseconds, and plain
/// Parquet files keep them as they are; Delta's `timestamp` type is
/// microseconds (its protocol maps it to Parquet's TIMESTAMP(MICROS)), so a
/// Delta table's files store the same instant in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Timestamps {
    #[default]
    Millis,
    Micros,
}

impl Timestamps {
    fn unit(self) -> TimeUnit {
        match self {
            Timestamps::Millis => TimeUnit::Millisecond,
            Timestamps::Micros => TimeUnit::Microsecond,
        }
    }

    /// Whether `record`'s timestamp can be stored in this unit: a Kafka
    /// timestamp is any i64 of milliseconds, and past about the year
    /// 294,000 it has no i64 of microseconds.
    pub fn admit(self, record: &KafkaRecord) -> Result<(), String> {
        match (self, record.timestamp) {
            (Timestamps::Micros, Some(millis)) if millis.checked_mul(1000).is_none() => Err(
                format!("timestamp {millis} ms has no microsecond value (a Delta timestamp)"),
            ),
            _ => Ok(()),
        }
    }
}

pub fn schema(value: ValueColumn, timestamps: Timestamps) -> SchemaRef {
    let headers = headers_builder().finish();
    Arc::new(Schema::new(vec![
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("kafka_offset", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(timestamps.unit(), Some("UTC".into())),
            true,
        ),
        Field::new("key", DataType::Binary, true),
        Field::new("headers", headers.data_type().clone(), false),
        Field::new(
            "value",
            match value {
                ValueColumn::Json => DataType::Utf8,
                ValueColumn::Raw => DataType::Binary,
            },
            true,
        ),
    ]))
}

fn headers_builder() -> MapBuilder<StringBuilder, BinaryBuilder> {
    MapBuilder::new(None, StringBuilder::new(), BinaryBuilder::new())
}

/// The rows for `records`, which [`admit`] (and [`Timestamps::admit`]) let
/// in. `adjust` maps a Kafka offset to the offset written (the topics.json
/// `offset_increment`).
pub fn to_batch(
    records: &[KafkaRecord],
    value: ValueColumn,
    timestamps: Timestamps,
    adjust: impl Fn(i32, i64) -> i64,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let accepted = records;
    let mut headers = headers_builder();
    for record in accepted {
        for header in &record.headers {
            headers.keys().append_value(&header.key);
            headers.values().append_option(header.value.as_deref());
        }
        headers.append(true)?;
    }
    let values: ArrayRef = match value {
        ValueColumn::Json => Arc::new(json_values(accepted)?),
        ValueColumn::Raw => Arc::new(
            accepted
                .iter()
                .map(|r| r.value.as_deref())
                .collect::<BinaryArray>(),
        ),
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            accepted
                .iter()
                .map(|r| Some(r.topic.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(accepted.iter().map(|r| r.partition).collect::<Int32Array>()),
        Arc::new(
            accepted
                .iter()
                .map(|r| adjust(r.partition, r.offset))
                .collect::<Int64Array>(),
        ),
        Arc::new(accepted.iter().map(|r| r.offset).collect::<Int64Array>()),
        match timestamps {
            Timestamps::Millis => Arc::new(
                accepted
                    .iter()
                    .map(|r| r.timestamp)
                    .collect::<TimestampMillisecondArray>()
                    .with_timezone("UTC"),
            ),
            Timestamps::Micros => {
                let micros = accepted.iter().map(|r| match r.timestamp {
                    None => Ok(None),
                    Some(millis) => millis.checked_mul(1000).map(Some).ok_or_else(|| {
                        arrow_schema::ArrowError::InvalidArgumentError(format!(
                            "timestamp {millis} ms was not admitted in microseconds"
                        ))
                    }),
                });
                Arc::new(
                    micros
                        .collect::<Result<TimestampMicrosecondArray, _>>()?
                        .with_timezone("UTC"),
                )
            }
        },
        Arc::new(
            accepted
                .iter()
                .map(|r| r.key.as_deref())
                .collect::<BinaryArray>(),
        ),
        Arc::new(headers.finish()),
        values,
    ];
    RecordBatch::try_new(schema(value, timestamps), columns)
}

/// The JSON value column, sized once. [`admit`] let only UTF-8 in, so a
/// value that is not is an error here, never replaced: the lossy conversion
/// this used to be was also a tenth of the export's time (`perf`), where
/// `from_utf8`'s ASCII path is nearly free.
fn json_values(records: &[KafkaRecord]) -> Result<StringArray, arrow_schema::ArrowError> {
    let bytes = records
        .iter()
        .filter_map(|r| r.value.as_ref())
        .map(Vec::len)
        .sum();
    let mut column = StringBuilder::with_capacity(records.len(), bytes);
    for record in records {
        match record.value.as_deref() {
            None => column.append_null(),
            Some(value) => column.append_value(std::str::from_utf8(value).map_err(|e| {
                arrow_schema::ArrowError::InvalidArgumentError(format!(
                    "the value at offset {} is not UTF-8 ({e}) but was let in",
                    record.offset
                ))
            })?),
        }
    }
    Ok(column.finish())
}

/// Whether `record` fits the value column, and if not, why. A JSON value
/// must be UTF-8 text holding one JSON document: bytes that are not UTF-8
/// inside a JSON string would otherwise be replaced or blanked on the way
/// into a text column. A missing value (a tombstone) is a null.
pub fn admit(record: &KafkaRecord, value: ValueColumn) -> Result<(), String> {
    match (value, record.value.as_deref()) {
        (ValueColumn::Raw, _) | (ValueColumn::Json, None) => Ok(()),
        (ValueColumn::Json, Some(bytes)) => crate::json::check_value(bytes).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Header;

    fn record(offset: i64, value: &[u8]) -> KafkaRecord {
        KafkaRecord {
            topic: "t".into(),
            partition: 2,
            offset,
            timestamp: Some(1_700_000_000_000),
            key: Some(b"k".to_vec()),
            value: Some(value.to_vec()),
            headers: vec![Header {
                key: "h".into(),
                value: None,
            }],
        }
    }

    #[test]
    fn json_rows_keep_metadata_and_reject_bad_values() {
        let records = [
            record(5, br#"{"a":1}"#),
            record(6, b"{oops"),
            record(7, b"[]"),
            // A lone surrogate: JSON's grammar, but no UTF-8 text holds it
            // (the import refuses it too: one rule, `crate::json`).
            record(8, br#"{"a":"\ud800"}"#),
        ];
        let verdicts: Vec<bool> = records
            .iter()
            .map(|r| admit(r, ValueColumn::Json).is_ok())
            .collect();
        assert_eq!(verdicts, [true, false, true, false]);
        let kept = [records[0].clone(), records[2].clone()];
        let batch = to_batch(&kept, ValueColumn::Json, Timestamps::Millis, |_, o| o + 100).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let offsets = batch
            .column_by_name("offset")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let kafka = batch
            .column_by_name("kafka_offset")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!((offsets.value(1), kafka.value(1)), (107, 7));
        assert_eq!(
            batch.schema(),
            schema(ValueColumn::Json, Timestamps::Millis)
        );
    }

    #[test]
    fn micros_hold_the_same_instant_and_refuse_what_has_no_microsecond_value() {
        let kept = [record(5, b"{}")];
        let batch = to_batch(&kept, ValueColumn::Json, Timestamps::Micros, |_, o| o).unwrap();
        let stamps = batch.column_by_name("timestamp").unwrap();
        let stamps = stamps
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(stamps.value(0), 1_700_000_000_000_000);
        let mut far = record(6, b"{}");
        far.timestamp = Some(i64::MAX / 10);
        assert!(Timestamps::Millis.admit(&far).is_ok());
        let reason = Timestamps::Micros.admit(&far).unwrap_err();
        assert!(reason.contains("microsecond"), "{reason}");
        assert!(to_batch(&[far], ValueColumn::Json, Timestamps::Micros, |_, o| o).is_err());
    }

    #[test]
    fn bytes_that_are_not_utf8_inside_a_json_string_are_refused_not_blanked() {
        let reason = admit(&record(1, b"{\"a\": \"\xff\xfe\"}"), ValueColumn::Json).unwrap_err();
        assert!(reason.contains("not UTF-8"), "{reason}");
        // Raw keeps any bytes as they are.
        assert!(admit(&record(1, b"\xff"), ValueColumn::Raw).is_ok());
    }
}
