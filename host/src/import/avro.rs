//! Avro object container files: the schema is in the file's header, so
//! nothing else is needed. Records become JSON objects as `apache-avro`
//! converts them (dates and timestamps as numbers, bytes as arrays of
//! numbers, map entries sorted by key), except that a NaN or infinite
//! float, which JSON cannot hold, becomes `null` instead of failing the
//! file. The JSON text is written straight from the Avro value.

use std::io::Read;

use apache_avro::Reader;
use bytes::Bytes;

use super::format::{Format, ReadError};
use crate::codec::{CodecError, NonFinite, write_avro_json};

/// The records of `input`, read a block at a time (a block is what the
/// writer buffered, 64 KiB by default in Spark and Java).
pub fn rows<R: Read>(
    input: R,
) -> Result<impl Iterator<Item = Result<Bytes, ReadError>>, ReadError> {
    let reader: Reader<'static, _> = Reader::new(input).map_err(|e| ReadError::Open {
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
        let value = value.map_err(|e| row_error(e.to_string()))?;
        let mut json = Vec::with_capacity(256);
        write_avro_json(0, &value, NonFinite::Null, &mut json).map_err(|e| match e {
            CodecError::Avro { reason, .. } => row_error(reason),
            other => row_error(other.to_string()),
        })?;
        Ok(Bytes::from(json))
    }))
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value as AvroValue;
    use apache_avro::{Schema, Writer};
    use serde_json::{Value, json};

    use super::*;
    use crate::import::format::Endless;

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
        let bytes = writer.into_inner().unwrap();
        let all: Vec<Value> = rows(bytes.as_slice())
            .unwrap()
            .map(|row| serde_json::from_slice(&row.unwrap()).unwrap())
            .collect();
        assert_eq!(
            all,
            vec![
                json!({"id": 1, "score": 0.5, "tags": ["a"]}),
                json!({"id": 2, "score": null, "tags": ["a"]}),
                json!({"id": 3, "score": null, "tags": ["a"]}),
            ]
        );
    }

    /// Records come as the file is read, a block at a time: an endless
    /// file gives its first records.
    #[test]
    fn records_are_read_as_the_file_is() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"r","fields":[{"name":"id","type":"long"}]}"#,
        )
        .unwrap();
        let mut writer = Writer::new(&schema, Vec::new());
        let record = |id: i64| {
            let mut record = apache_avro::types::Record::new(&schema).unwrap();
            record.put("id", id);
            record
        };
        writer.append(record(1)).unwrap();
        writer.flush().unwrap();
        let header_and_first = writer.get_ref().len();
        writer.append(record(2)).unwrap();
        writer.flush().unwrap();
        // The second block (its record, then the file's sync marker) is
        // repeated without end.
        let mut start = writer.into_inner().unwrap();
        let block = start.split_off(header_and_first);
        let endless =
            std::io::BufReader::new(std::io::Read::chain(start.as_slice(), Endless(block)));
        let first: Vec<Value> = rows(endless)
            .unwrap()
            .take(4)
            .map(|row| serde_json::from_slice(&row.unwrap()).unwrap())
            .collect();
        assert_eq!(
            first,
            [
                json!({"id": 1}),
                json!({"id": 2}),
                json!({"id": 2}),
                json!({"id": 2})
            ]
        );
    }

    #[test]
    fn garbage_is_refused_at_open() {
        let bytes: &[u8] = b"this is not avro at all";
        assert!(matches!(
            rows(bytes).err(),
            Some(ReadError::Open {
                format: Format::Avro,
                ..
            })
        ));
    }
}
