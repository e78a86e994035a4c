//! Typed value columns from Avro schemas: the fields of every version of a
//! subject merged into one set of Arrow columns, so records written with
//! several schema versions share one file. A field missing from a version
//! is null in its rows; a field whose type differs between versions, or
//! that is not a scalar, is kept as JSON text.

use std::sync::Arc;

use apache_avro::Schema as AvroSchema;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use serde_json::Value;

/// Names the metadata columns use; a value field with one of them is
/// written as `value_<name>`.
const TAKEN: [&str; 8] = [
    "topic",
    "partition",
    "offset",
    "kafka_offset",
    "timestamp",
    "key",
    "headers",
    "value",
];

/// One typed column: the Avro field it comes from and its Arrow field.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueField {
    pub source: String,
    pub field: Field,
}

/// The merged columns of `schemas` (record schemas; others contribute
/// nothing), in the order fields first appear.
pub fn merged_fields(schemas: &[Arc<AvroSchema>]) -> Vec<ValueField> {
    let mut merged: Vec<(String, DataType)> = Vec::new();
    for schema in schemas {
        let AvroSchema::Record(record) = schema.as_ref() else {
            continue;
        };
        for field in &record.fields {
            let data_type = arrow_type(&field.schema);
            match merged.iter_mut().find(|(name, _)| *name == field.name) {
                Some((_, existing)) if *existing != data_type => *existing = DataType::Utf8,
                Some(_) => {}
                None => merged.push((field.name.clone(), data_type)),
            }
        }
    }
    merged
        .into_iter()
        .map(|(name, data_type)| {
            let column = if TAKEN.contains(&name.as_str()) {
                format!("value_{name}")
            } else {
                name.clone()
            };
            ValueField {
                source: name,
                field: Field::new(column, data_type, true),
            }
        })
        .collect()
}

/// Scalars map to their Arrow type; an optional scalar (`["null", T]`) to a
/// nullable T; anything else to JSON text.
fn arrow_type(schema: &AvroSchema) -> DataType {
    match schema {
        AvroSchema::Boolean => DataType::Boolean,
        AvroSchema::Int | AvroSchema::Date | AvroSchema::TimeMillis => DataType::Int32,
        AvroSchema::Long
        | AvroSchema::TimeMicros
        | AvroSchema::TimestampMillis
        | AvroSchema::TimestampMicros
        | AvroSchema::LocalTimestampMillis
        | AvroSchema::LocalTimestampMicros => DataType::Int64,
        AvroSchema::Float => DataType::Float32,
        AvroSchema::Double => DataType::Float64,
        AvroSchema::Bytes => DataType::Binary,
        AvroSchema::Union(union) => {
            let variants: Vec<&AvroSchema> = union
                .variants()
                .iter()
                .filter(|v| !matches!(v, AvroSchema::Null))
                .collect();
            match variants.as_slice() {
                [only] => arrow_type(only),
                _ => DataType::Utf8,
            }
        }
        _ => DataType::Utf8,
    }
}

/// `base`'s schema followed by the typed columns.
pub fn schema_with(base: &SchemaRef, fields: &[ValueField]) -> SchemaRef {
    let mut all: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    all.extend(fields.iter().map(|f| f.field.clone()));
    Arc::new(Schema::new(all))
}

/// `batch` (whose `value` column holds each record's JSON) with the typed
/// columns appended, filled from that JSON.
pub fn with_value_columns(
    batch: &RecordBatch,
    fields: &[ValueField],
) -> Result<RecordBatch, ArrowError> {
    let values = batch
        .column_by_name("value")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| ArrowError::SchemaError("no JSON `value` column".into()))?;
    let parsed: Vec<Value> = (0..values.len())
        .map(|i| {
            if values.is_null(i) {
                Value::Null
            } else {
                serde_json::from_str(values.value(i)).unwrap_or(Value::Null)
            }
        })
        .collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for field in fields {
        let cells = parsed
            .iter()
            .map(|v| v.get(&field.source).unwrap_or(&Value::Null));
        columns.push(column(field.field.data_type(), cells));
    }
    RecordBatch::try_new(schema_with(&batch.schema(), fields), columns)
}

fn column<'a>(data_type: &DataType, cells: impl Iterator<Item = &'a Value>) -> ArrayRef {
    match data_type {
        DataType::Boolean => {
            let mut b = BooleanBuilder::new();
            cells.for_each(|v| b.append_option(v.as_bool()));
            Arc::new(b.finish())
        }
        DataType::Int32 => {
            let mut b = Int32Builder::new();
            cells.for_each(|v| b.append_option(v.as_i64().and_then(|n| i32::try_from(n).ok())));
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::new();
            cells.for_each(|v| b.append_option(v.as_i64()));
            Arc::new(b.finish())
        }
        DataType::Float32 => {
            let mut b = Float32Builder::new();
            cells.for_each(|v| b.append_option(v.as_f64().map(|f| f as f32)));
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::new();
            cells.for_each(|v| b.append_option(v.as_f64()));
            Arc::new(b.finish())
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::new();
            // apache-avro writes bytes to JSON as a list of numbers.
            cells.for_each(|v| match v.as_array() {
                Some(items) => {
                    let bytes: Vec<u8> = items
                        .iter()
                        .filter_map(|i| i.as_u64().and_then(|n| u8::try_from(n).ok()))
                        .collect();
                    b.append_value(bytes);
                }
                None => b.append_null(),
            });
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::new();
            cells.for_each(|v| match v {
                Value::Null => b.append_null(),
                Value::String(s) => b.append_value(s),
                other => b.append_value(other.to_string()),
            });
            Arc::new(b.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;

    fn parse(text: &str) -> Arc<AvroSchema> {
        Arc::new(AvroSchema::parse_str(text).unwrap())
    }

    #[test]
    fn versions_merge_into_nullable_typed_columns() {
        let v1 = parse(
            r#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"score","type":"int"},{"name":"offset","type":"string"}]}"#,
        );
        let v2 = parse(
            r#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"score","type":"double"},{"name":"email","type":["null","string"]},{"name":"tags","type":{"type":"array","items":"string"}}]}"#,
        );
        let fields = merged_fields(&[v1, v2]);
        let shape: Vec<(&str, &str, DataType)> = fields
            .iter()
            .map(|f| {
                (
                    f.source.as_str(),
                    f.field.name().as_str(),
                    f.field.data_type().clone(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("id", "id", DataType::Int64),
                ("score", "score", DataType::Utf8),
                ("offset", "value_offset", DataType::Utf8),
                ("email", "email", DataType::Utf8),
                ("tags", "tags", DataType::Utf8),
            ]
        );
        assert!(fields.iter().all(|f| f.field.is_nullable()));
    }

    #[test]
    fn columns_are_filled_from_each_rows_json() {
        let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
        let values = StringArray::from(vec![
            Some(r#"{"id": 1, "tags": ["a"]}"#),
            Some(r#"{"id": 2}"#),
            None,
        ]);
        let batch = RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap();
        let fields = vec![
            ValueField {
                source: "id".into(),
                field: Field::new("id", DataType::Int64, true),
            },
            ValueField {
                source: "tags".into(),
                field: Field::new("tags", DataType::Utf8, true),
            },
        ];
        let out = with_value_columns(&batch, &fields).unwrap();
        let ids = out
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.iter().collect::<Vec<_>>(), [Some(1), Some(2), None]);
        let tags = out
            .column_by_name("tags")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            tags.iter().collect::<Vec<_>>(),
            [Some(r#"["a"]"#), None, None]
        );
    }
}
