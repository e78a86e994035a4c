//! Avro object container files: the schema is in the file's header, so
//! nothing else is needed. Records become JSON objects as `apache-avro`
//! converts them (dates and timestamps as numbers, bytes as arrays of
//! numbers, map entries sorted by key), except that a NaN or infinite
//! float, which JSON cannot hold, becomes `null` instead of failing the
//! file. The file is read by `sluice-avro`'s [`Container`], so a record
//! nested past [`sluice_avro::MAX_DEPTH`] or a block that decompresses past
//! its limit fails this file by name, and the other files go on.

use std::io::Read;

use bytes::Bytes;
use sluice_avro::{Container, ContainerError, NonFinite, write_json};

use super::format::{Format, ReadError};

/// The records of `input`, read a block at a time (a block is what the
/// writer buffered, 64 KiB by default in Spark and Java).
pub fn rows<R: Read>(
    input: R,
) -> Result<impl Iterator<Item = Result<Bytes, ReadError>>, ReadError> {
    let container = Container::open(input).map_err(|e| ReadError::Open {
        format: Format::Avro,
        reason: e.to_string(),
    })?;
    // The container itself stops after its first error.
    Ok(container.enumerate().map(|(index, value)| {
        let value = value.map_err(row_error)?;
        let mut json = Vec::with_capacity(256);
        write_json(&value, NonFinite::Null, &mut json).map_err(|reason| ReadError::Row {
            unit: "record",
            number: index as u64 + 1,
            reason: reason.to_string(),
        })?;
        Ok(Bytes::from(json))
    }))
}

/// A record or block the container could not read, by record number.
fn row_error(error: ContainerError) -> ReadError {
    match error {
        ContainerError::Block { number, source } => ReadError::Row {
            unit: "record",
            number,
            reason: source.to_string(),
        },
        ContainerError::Record { number, source } => ReadError::Row {
            unit: "record",
            number,
            reason: source.to_string(),
        },
        other => ReadError::Open {
            format: Format::Avro,
            reason: other.to_string(),
        },
    }
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

    /// A linked list nested past the depth limit, as the file's third
    /// record: the file fails naming that record and the reason, on a
    /// small stack (before, apache-avro's reader overflowed it and the
    /// process aborted).
    #[test]
    fn a_record_nested_past_the_limit_fails_the_file_by_record_number() {
        let list = Schema::parse_str(
            r#"{"type":"record","name":"Node","fields":[
                {"name":"value","type":"int"},{"name":"next","type":["null","Node"]}]}"#,
        )
        .unwrap();
        let node = |next: AvroValue| {
            AvroValue::Record(vec![
                ("value".into(), AvroValue::Int(1)),
                ("next".into(), next),
            ])
        };
        let mut writer = Writer::new(&list, Vec::new());
        for _ in 0..2 {
            let last = node(AvroValue::Union(0, Box::new(AvroValue::Null)));
            writer
                .append(node(AvroValue::Union(1, Box::new(last))))
                .unwrap();
        }
        let mut file = writer.into_inner().unwrap();
        // A third block by hand (apache-avro's encoder recurses too): one
        // record of 100,000 nodes, each its value 1 and the union's branch
        // 1, the last branch 0, then the file's sync marker.
        let sync = file[file.len() - 16..].to_vec();
        let mut deep = Vec::new();
        for node in 1..=100_000 {
            deep.extend([0x02, if node < 100_000 { 0x02 } else { 0x00 }]);
        }
        file.push(0x02); // one record
        let mut size = (deep.len() as u64) << 1;
        while size > 0x7f {
            file.push((size as u8 & 0x7f) | 0x80);
            size >>= 7;
        }
        file.push(size as u8);
        file.extend(deep);
        file.extend(sync);
        let outcome = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || rows(file.as_slice()).unwrap().collect::<Vec<_>>())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(outcome.len(), 3);
        assert!(outcome[..2].iter().all(Result::is_ok));
        let Err(ReadError::Row { number, reason, .. }) = &outcome[2] else {
            panic!("{:?}", outcome[2]);
        };
        assert_eq!(*number, 3);
        assert!(
            reason.contains("nests more than 128 levels deep"),
            "{reason}"
        );
    }
}
