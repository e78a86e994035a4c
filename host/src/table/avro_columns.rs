//! Typed value columns from Avro schemas: the fields of every version of a
//! subject merged into one set of Arrow columns, so records written with
//! several schema versions share one file. A field missing from a version
//! is null in its rows; a field whose type differs between versions, or
//! that is not a scalar, is kept as JSON text.

use std::sync::Arc;

use apache_avro::Schema as AvroSchema;
use apache_avro::types::Value as AvroValue;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

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
/// nothing), in the order fields first appear. Only each version's own
/// fields are looked at, never through a named type's reference, so a
/// recursive schema (a field of the record's own type) gives a JSON text
/// column like any other record field.
pub fn merged_fields<'a>(schemas: impl IntoIterator<Item = &'a AvroSchema>) -> Vec<ValueField> {
    let mut merged: Vec<(String, DataType)> = Vec::new();
    for schema in schemas {
        let AvroSchema::Record(record) = schema else {
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
/// nullable T; anything else to JSON text. Recurses only into a union's one
/// branch, which cannot be a union: a reference to a named type (even the
/// record's own) is not followed.
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

/// One typed value of a record, ready for its column.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Bytes(Vec<u8>),
    Text(String),
}

/// The cells of one decoded record, one per field, taken from the Avro
/// value itself (no JSON round trip). A value that its column cannot hold
/// exactly (a long past int32, a double that a float would round) is an
/// error naming the field, so the record is dead-lettered rather than
/// written changed.
pub fn typed_cells(record: &AvroValue, fields: &[ValueField]) -> Result<Vec<Cell>, String> {
    let AvroValue::Record(items) = unwrap_union(record) else {
        return Err(
            "the value is not an Avro record, so it has no fields for the typed columns".into(),
        );
    };
    fields
        .iter()
        .map(|field| {
            let value = items
                .iter()
                .find(|(name, _)| *name == field.source)
                .map_or(&AvroValue::Null, |(_, v)| v);
            cell(field.field.data_type(), value)
                .map_err(|reason| format!("field `{}`: {reason}", field.source))
        })
        .collect()
}

fn unwrap_union(value: &AvroValue) -> &AvroValue {
    match value {
        AvroValue::Union(_, inner) => unwrap_union(inner),
        other => other,
    }
}

/// Beyond this, an integer has no exact double (2^53).
const EXACT_IN_F64: i64 = 1 << 53;

fn cell(data_type: &DataType, value: &AvroValue) -> Result<Cell, String> {
    use AvroValue as V;
    let value = unwrap_union(value);
    if matches!(value, V::Null) {
        return Ok(Cell::Null);
    }
    let refused = || {
        Err(format!(
            "{} does not fit a {data_type} column without loss",
            describe(value)
        ))
    };
    Ok(match (data_type, value) {
        (DataType::Boolean, V::Boolean(b)) => Cell::Bool(*b),
        (DataType::Int32, V::Int(n) | V::Date(n) | V::TimeMillis(n)) => Cell::Int32(*n),
        (DataType::Int32, V::Long(n)) => match i32::try_from(*n) {
            Ok(n) => Cell::Int32(n),
            Err(_) => return refused(),
        },
        (DataType::Int64, V::Int(n) | V::Date(n) | V::TimeMillis(n)) => Cell::Int64(i64::from(*n)),
        (
            DataType::Int64,
            V::Long(n)
            | V::TimeMicros(n)
            | V::TimestampMillis(n)
            | V::TimestampMicros(n)
            | V::TimestampNanos(n)
            | V::LocalTimestampMillis(n)
            | V::LocalTimestampMicros(n)
            | V::LocalTimestampNanos(n),
        ) => Cell::Int64(*n),
        (DataType::Float32, V::Float(f)) => Cell::Float32(*f),
        (DataType::Float32, V::Double(d)) => {
            let narrowed = *d as f32;
            if f64::from(narrowed) == *d || d.is_nan() {
                Cell::Float32(narrowed)
            } else {
                return refused();
            }
        }
        (DataType::Float64, V::Double(d)) => Cell::Float64(*d),
        (DataType::Float64, V::Float(f)) => Cell::Float64(f64::from(*f)),
        (DataType::Float64, V::Int(n)) => Cell::Float64(f64::from(*n)),
        (DataType::Float64, V::Long(n)) if n.abs() <= EXACT_IN_F64 => Cell::Float64(*n as f64),
        (DataType::Binary, V::Bytes(b) | V::Fixed(_, b)) => Cell::Bytes(b.clone()),
        (DataType::Utf8, V::String(s) | V::Enum(_, s)) => Cell::Text(s.clone()),
        (DataType::Utf8, V::Uuid(u)) => Cell::Text(u.as_hyphenated().to_string()),
        (DataType::Utf8, other) => match serde_json::Value::try_from(other.clone()) {
            Ok(json) => Cell::Text(json.to_string()),
            Err(e) => return Err(format!("cannot be written as JSON text: {e}")),
        },
        _ => return refused(),
    })
}

/// A value's kind and, for numbers, the value, for an error message.
fn describe(value: &AvroValue) -> String {
    match value {
        AvroValue::Int(n) => format!("int {n}"),
        AvroValue::Long(n) => format!("long {n}"),
        AvroValue::Float(f) => format!("float {f}"),
        AvroValue::Double(d) => format!("double {d}"),
        AvroValue::Boolean(b) => format!("boolean {b}"),
        AvroValue::String(_) => "a string".into(),
        AvroValue::Bytes(_) | AvroValue::Fixed(..) => "bytes".into(),
        AvroValue::Array(_) => "an array".into(),
        AvroValue::Map(_) => "a map".into(),
        AvroValue::Record(_) => "a record".into(),
        other => format!("{other:?}"),
    }
}

/// `batch` with one column per field appended, filled from `rows` (the
/// cells of each of the batch's rows, in order).
pub fn with_value_columns(
    batch: &RecordBatch,
    fields: &[ValueField],
    rows: &[Vec<Cell>],
) -> Result<RecordBatch, ArrowError> {
    if rows.len() != batch.num_rows() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "{} rows of typed cells for {} rows",
            rows.len(),
            batch.num_rows()
        )));
    }
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (index, field) in fields.iter().enumerate() {
        let cells = rows.iter().map(|row| row.get(index).unwrap_or(&Cell::Null));
        columns.push(column(field.field.data_type(), rows.len(), cells));
    }
    RecordBatch::try_new(schema_with(&batch.schema(), fields), columns)
}

fn column<'a>(
    data_type: &DataType,
    rows: usize,
    cells: impl Iterator<Item = &'a Cell>,
) -> ArrayRef {
    match data_type {
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(rows);
            cells.for_each(|c| {
                b.append_option(if let Cell::Bool(v) = c {
                    Some(*v)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        DataType::Int32 => {
            let mut b = Int32Builder::with_capacity(rows);
            cells.for_each(|c| {
                b.append_option(if let Cell::Int32(v) = c {
                    Some(*v)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(rows);
            cells.for_each(|c| {
                b.append_option(if let Cell::Int64(v) = c {
                    Some(*v)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        DataType::Float32 => {
            let mut b = Float32Builder::with_capacity(rows);
            cells.for_each(|c| {
                b.append_option(if let Cell::Float32(v) = c {
                    Some(*v)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(rows);
            cells.for_each(|c| {
                b.append_option(if let Cell::Float64(v) = c {
                    Some(*v)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::with_capacity(rows, rows * 8);
            cells.for_each(|c| {
                b.append_option(if let Cell::Bytes(v) = c {
                    Some(v)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::with_capacity(rows, rows * 16);
            cells.for_each(|c| b.append_option(if let Cell::Text(v) = c { Some(v) } else { None }));
            Arc::new(b.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;

    fn parse(text: &str) -> sluice_avro::WriterSchema {
        sluice_avro::WriterSchema::parse(text).unwrap()
    }

    #[test]
    fn versions_merge_into_nullable_typed_columns() {
        let v1 = parse(
            r#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"score","type":"int"},{"name":"offset","type":"string"}]}"#,
        );
        let v2 = parse(
            r#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"score","type":"double"},{"name":"email","type":["null","string"]},{"name":"tags","type":{"type":"array","items":"string"}}]}"#,
        );
        let fields = merged_fields([v1.schema(), v2.schema()]);
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

    fn field(name: &str, data_type: DataType) -> ValueField {
        ValueField {
            source: name.into(),
            field: Field::new(name, data_type, true),
        }
    }

    #[test]
    fn cells_come_from_the_avro_value_and_missing_fields_are_null() {
        use apache_avro::types::Value as V;
        let fields = [
            field("id", DataType::Int64),
            field("tags", DataType::Utf8),
            field("email", DataType::Utf8),
        ];
        let record = V::Record(vec![
            ("id".into(), V::Long(1)),
            ("tags".into(), V::Array(vec![V::String("a".into())])),
        ]);
        let cells = typed_cells(&record, &fields).unwrap();
        assert_eq!(
            cells,
            [Cell::Int64(1), Cell::Text(r#"["a"]"#.into()), Cell::Null]
        );
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        let base = RecordBatch::try_new(
            schema,
            vec![Arc::new(arrow_array::Int32Array::from(vec![7, 8]))],
        )
        .unwrap();
        let rows = vec![cells, vec![Cell::Int64(2), Cell::Null, Cell::Null]];
        let out = with_value_columns(&base, &fields, &rows).unwrap();
        let ids = out
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.iter().collect::<Vec<_>>(), [Some(1), Some(2)]);
    }

    #[test]
    fn a_value_its_column_cannot_hold_exactly_is_an_error_naming_the_field() {
        use apache_avro::types::Value as V;
        let record = |v: V| V::Record(vec![("n".into(), v)]);
        let int32 = [field("n", DataType::Int32)];
        let float32 = [field("n", DataType::Float32)];
        let reason = typed_cells(&record(V::Long(3_000_000_000)), &int32).unwrap_err();
        assert!(
            reason.contains("field `n`") && reason.contains("3000000000"),
            "{reason}"
        );
        assert_eq!(
            typed_cells(&record(V::Long(-5)), &int32).unwrap(),
            [Cell::Int32(-5)]
        );
        assert!(typed_cells(&record(V::Double(0.1)), &float32).is_err());
        assert_eq!(
            typed_cells(&record(V::Double(0.5)), &float32).unwrap(),
            [Cell::Float32(0.5)]
        );
        let text = [field("n", DataType::Utf8)];
        assert!(typed_cells(&record(V::Array(vec![V::Double(f64::NAN)])), &text).is_err());
        assert!(typed_cells(&V::Long(1), &int32).is_err(), "not a record");
    }

    /// A recursive schema (a tree whose children are trees) gives its
    /// columns without following the reference to itself, on a small
    /// stack; the recursive field is JSON text of the nested value.
    #[test]
    fn a_recursive_schema_gives_columns_and_its_nested_field_as_json_text() {
        let tree = r#"{"type":"record","name":"Tree","fields":[
            {"name":"id","type":"long"},
            {"name":"left","type":["null","Tree"]},
            {"name":"children","type":{"type":"array","items":"Tree"}}]}"#;
        let (fields, cells) = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let schema = parse(tree);
                let fields = merged_fields([schema.schema()]);
                // id 1, left: a tree (id 2, no left, no children), no children.
                let value = schema
                    .decode(&[0x02, 0x02, 0x04, 0x00, 0x00, 0x00])
                    .unwrap();
                let cells = typed_cells(&value, &fields).unwrap();
                (fields, cells)
            })
            .unwrap()
            .join()
            .unwrap();
        let shape: Vec<(&str, &DataType)> = fields
            .iter()
            .map(|f| (f.source.as_str(), f.field.data_type()))
            .collect();
        assert_eq!(
            shape,
            [
                ("id", &DataType::Int64),
                ("left", &DataType::Utf8),
                ("children", &DataType::Utf8)
            ]
        );
        assert_eq!(
            cells,
            [
                Cell::Int64(1),
                Cell::Text(r#"{"id":2,"left":null,"children":[]}"#.into()),
                Cell::Text("[]".into())
            ]
        );
    }
}
