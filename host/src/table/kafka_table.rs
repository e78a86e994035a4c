//! Kafka records as an Arrow table: the metadata columns every export has
//! (topic, partition, offset as written and as read, timestamp, key,
//! headers) and the value, as JSON text or raw bytes.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, MapBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
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

pub fn schema(value: ValueColumn) -> SchemaRef {
    let headers = headers_builder().finish();
    Arc::new(Schema::new(vec![
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("kafka_offset", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
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

/// The rows for `records`, which [`admit`] let in. `adjust` maps a Kafka
/// offset to the offset written (the topics.json `offset_increment`).
pub fn to_batch(
    records: &[KafkaRecord],
    value: ValueColumn,
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
        ValueColumn::Json => Arc::new(
            accepted
                .iter()
                .map(|r| r.value.as_deref().map(String::from_utf8_lossy))
                .collect::<StringArray>(),
        ),
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
        Arc::new(
            accepted
                .iter()
                .map(|r| r.timestamp)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
        Arc::new(
            accepted
                .iter()
                .map(|r| r.key.as_deref())
                .collect::<BinaryArray>(),
        ),
        Arc::new(headers.finish()),
        values,
    ];
    RecordBatch::try_new(schema(value), columns)
}

/// Whether `record` fits the value column, and if not, why. A JSON value
/// must be UTF-8 text holding one JSON document: bytes that are not UTF-8
/// inside a JSON string would otherwise be replaced or blanked on the way
/// into a text column. A missing value (a tombstone) is a null.
pub fn admit(record: &KafkaRecord, value: ValueColumn) -> Result<(), String> {
    match (value, record.value.as_deref()) {
        (ValueColumn::Raw, _) | (ValueColumn::Json, None) => Ok(()),
        (ValueColumn::Json, Some(bytes)) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| format!("value is not UTF-8 text (so not JSON): {e}"))?;
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map(|_| ())
                .map_err(|e| format!("value is not valid JSON: {e}"))
        }
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
        ];
        let verdicts: Vec<bool> = records
            .iter()
            .map(|r| admit(r, ValueColumn::Json).is_ok())
            .collect();
        assert_eq!(verdicts, [true, false, true]);
        let kept = [records[0].clone(), records[2].clone()];
        let batch = to_batch(&kept, ValueColumn::Json, |_, o| o + 100).unwrap();
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
        assert_eq!(batch.schema(), schema(ValueColumn::Json));
    }

    #[test]
    fn bytes_that_are_not_utf8_inside_a_json_string_are_refused_not_blanked() {
        let reason = admit(&record(1, b"{\"a\": \"\xff\xfe\"}"), ValueColumn::Json).unwrap_err();
        assert!(reason.contains("not UTF-8"), "{reason}");
        // Raw keeps any bytes as they are.
        assert!(admit(&record(1, b"\xff"), ValueColumn::Raw).is_ok());
    }
}
