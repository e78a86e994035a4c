//! Avro object container files: the schema is in the file's header, so
//! nothing else is needed. Records become JSON objects as `apache-avro`
//! converts them (dates and timestamps as numbers, bytes as arrays of
//! numbers), except that a NaN or infinite float, which JSON cannot hold,
//! becomes `null` instead of failing the file.

use std::io::Cursor;

use apache_avro::Reader;
use apache_avro::types::Value as AvroValue;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::format::{Format, ReadError};

pub fn rows(bytes: Bytes) -> Result<impl Iterator<Item = Result<Value, ReadError>>, ReadError> {
    let reader: Reader<'static, _> =
        Reader::new(Cursor::new(bytes)).map_err(|e| ReadError::Open {
            format: Format::Avro,
            reason: e.to_string(),
        })?;
    // The reader itself stops after its first error.
    Ok(reader.enumerate().map(|(index, value)| {
        let row_error = |reason: String| ReadError::Row {
            unit: "record",
            number: index as u64 + 1,
            reason,
        };
        to_json(value.map_err(|e| row_error(e.to_string()))?).map_err(row_error)
    }))
}

fn to_json(value: AvroValue) -> Result<Value, String> {
    let finite = |f: f64| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    Ok(match value {
        AvroValue::Float(f) => finite(f.into()),
        AvroValue::Double(d) => finite(d),
        AvroValue::Union(_, inner) => to_json(*inner)?,
        AvroValue::Array(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        AvroValue::Map(items) => Value::Object(
            items
                .into_iter()
                .map(|(k, v)| Ok((k, to_json(v)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
        AvroValue::Record(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, to_json(v)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
        other => Value::try_from(other).map_err(|e| e.to_string())?,
    })
}

#[cfg(test)]
mod tests {
    use apache_avro::{Schema, Writer};
    use serde_json::json;

    use super::*;

    #[test]
    fn records_become_objects_in_file_order() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"r","fields":[
                {"name":"id","type":"long"},
                {"name":"score","type":["null","double"]},
                {"name":"tags","type":{"type":"array","items":"string"}}]}"#,
        )
        .unwrap();
        let mut writer = Writer::new(&schema, Vec::new());
        for (id, score) in [(1i64, Some(0.5)), (2, None), (3, Some(f64::NAN))] {
            let mut record = apache_avro::types::Record::new(&schema).unwrap();
            record.put("id", id);
            record.put("score", score);
            record.put(
                "tags",
                AvroValue::Array(vec![AvroValue::String("a".into())]),
            );
            writer.append(record).unwrap();
        }
        let bytes = Bytes::from(writer.into_inner().unwrap());
        let all: Vec<Value> = rows(bytes).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            all,
            vec![
                json!({"id": 1, "score": 0.5, "tags": ["a"]}),
                json!({"id": 2, "score": null, "tags": ["a"]}),
                json!({"id": 3, "score": null, "tags": ["a"]}),
            ]
        );
    }

    #[test]
    fn garbage_is_refused_at_open() {
        let bytes = Bytes::from_static(b"this is not avro at all");
        assert!(matches!(
            rows(bytes).err(),
            Some(ReadError::Open {
                format: Format::Avro,
                ..
            })
        ));
    }
}
