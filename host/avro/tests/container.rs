//! Object container files read record by record within the limits: what
//! apache-avro's `Reader` reads the same, what it would overflow the stack
//! on, allocate without bound for, or panic on, refused naming the record.

use apache_avro::types::Value;
use apache_avro::{Codec, Schema, Writer};
use sluice_avro::{
    BlockError, Container, ContainerError, DatumError, MAX_BLOCK_BYTES, MAX_DEPTH, MAX_EMPTY_ITEMS,
};

const LIST: &str = r#"{"type":"record","name":"Node","fields":[
    {"name":"value","type":"int"},{"name":"next","type":["null","Node"]}]}"#;

fn long(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z > 0x7f {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

const SYNC: [u8; 16] = *b"0123456789abcdef";

/// A container file written by hand: the header with `schema` and
/// `codec`, then each block's record count and stored bytes.
fn container(schema: &str, codec: &str, blocks: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut file = b"Obj\x01".to_vec();
    long(2, &mut file);
    for (key, value) in [("avro.schema", schema), ("avro.codec", codec)] {
        long(key.len() as i64, &mut file);
        file.extend_from_slice(key.as_bytes());
        long(value.len() as i64, &mut file);
        file.extend_from_slice(value.as_bytes());
    }
    long(0, &mut file);
    file.extend(SYNC);
    for (count, bytes) in blocks {
        long(*count, &mut file);
        long(bytes.len() as i64, &mut file);
        file.extend_from_slice(bytes);
        file.extend(SYNC);
    }
    file
}

/// A list of `nodes` nodes as one datum (see `depth.rs`).
fn list_datum(nodes: usize) -> Vec<u8> {
    let mut datum = Vec::new();
    for node in 1..=nodes {
        datum.extend([0x02, if node < nodes { 0x02 } else { 0x00 }]);
    }
    datum
}

fn records(file: &[u8]) -> Result<Vec<Value>, ContainerError> {
    Container::open(file)?.collect()
}

#[test]
fn files_apache_avro_writes_read_the_same_with_every_codec() {
    let schema = Schema::parse_str(LIST).unwrap();
    let node = |value: i32, next: Value| {
        Value::Record(vec![
            ("value".into(), Value::Int(value)),
            ("next".into(), next),
        ])
    };
    let values: Vec<Value> = (0..300)
        .map(|i| {
            let tail = node(i + 1, Value::Union(0, Box::new(Value::Null)));
            node(i, Value::Union(1, Box::new(tail)))
        })
        .collect();
    for codec in [
        Codec::Null,
        Codec::Deflate(Default::default()),
        Codec::Snappy,
    ] {
        let mut writer = Writer::with_codec(&schema, Vec::new(), codec);
        for value in &values {
            writer.append(value.clone()).unwrap();
            // Several blocks, not one.
            writer.flush().unwrap();
        }
        let file = writer.into_inner().unwrap();
        assert_eq!(records(&file).unwrap(), values, "{codec:?}");
    }
}

#[test]
fn a_record_nested_past_the_limit_is_refused_by_number_on_a_small_stack() {
    let mut block = list_datum(3);
    block.extend(list_datum(100_000));
    let file = container(LIST, "null", &[(2, block)]);
    let outcome = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let mut reader = Container::open(&file[..]).unwrap();
            let first = reader.next().map(|r| r.is_ok());
            (first, reader.next(), reader.next())
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        outcome,
        (
            Some(true),
            Some(Err(ContainerError::Record {
                number: 2,
                source: DatumError::TooDeep { limit: MAX_DEPTH }
            })),
            None
        )
    );
}

#[test]
fn a_snappy_block_shorter_than_its_checksum_is_refused_where_apache_avro_panics() {
    let file = container(r#""int""#, "snappy", &[(1, vec![0x02, 0x02])]);
    let apache = std::panic::catch_unwind(|| {
        apache_avro::Reader::new(&file[..])
            .map(|reader| reader.count())
            .ok()
    });
    assert!(apache.is_err(), "apache-avro panics: {apache:?}");
    assert!(matches!(
        records(&file),
        Err(ContainerError::Block {
            number: 1,
            source: BlockError::Corrupt(_)
        })
    ));
}

#[test]
fn a_block_that_decompresses_past_the_limit_is_refused() {
    // A snappy block declaring 4 GiB, which apache-avro would allocate.
    let mut declared = Vec::new();
    declared.extend([0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0]);
    let snappy = container(r#""int""#, "snappy", &[(1, declared)]);
    let too_large = Err(ContainerError::Block {
        number: 1,
        source: BlockError::TooLarge {
            limit: MAX_BLOCK_BYTES,
        },
    });
    assert_eq!(records(&snappy), too_large);
    // A deflate block of zeros that inflates past the limit.
    let zeros = vec![0u8; MAX_BLOCK_BYTES + 1];
    let bomb = miniz_oxide::deflate::compress_to_vec(&zeros, 1);
    let deflate = container(r#""int""#, "deflate", &[(1, bomb)]);
    assert_eq!(records(&deflate), too_large);
}

#[test]
fn records_that_take_no_bytes_are_bounded() {
    // apache-avro would give a billion nulls from these few bytes.
    let file = container(r#""null""#, "null", &[(1_000_000_000, Vec::new())]);
    let mut reader = Container::open(&file[..]).unwrap();
    let read = reader.by_ref().take_while(Result::is_ok).count();
    assert_eq!(read, MAX_EMPTY_ITEMS);
    assert_eq!(reader.next(), None, "nothing after the error");
    let error = records(&file).unwrap_err();
    assert_eq!(
        error,
        ContainerError::Block {
            number: MAX_EMPTY_ITEMS as u64 + 1,
            source: BlockError::TooManyEmpty {
                limit: MAX_EMPTY_ITEMS
            }
        }
    );
}

#[test]
fn broken_files_say_what_and_where() {
    let good = |n: i32| {
        let mut datum = Vec::new();
        long(i64::from(n), &mut datum);
        datum
    };
    // Empty blocks are skipped; a cut block names the next record.
    let mut file = container(
        r#""int""#,
        "null",
        &[(1, good(5)), (0, Vec::new()), (1, good(6))],
    );
    assert_eq!(records(&file), Ok(vec![Value::Int(5), Value::Int(6)]));
    file.truncate(file.len() - 10);
    assert_eq!(
        records(&file),
        Err(ContainerError::Block {
            number: 2,
            source: BlockError::EndsEarly
        })
    );
    let mut wrong_sync = container(r#""int""#, "null", &[(1, good(5))]);
    let last = wrong_sync.len() - 1;
    wrong_sync[last] ^= 1;
    assert_eq!(
        records(&wrong_sync),
        Err(ContainerError::Block {
            number: 1,
            source: BlockError::Sync
        })
    );
    assert_eq!(
        records(&container(r#""int""#, "zstandard", &[])),
        Err(ContainerError::Codec("zstandard".into()))
    );
    assert!(matches!(
        records(b"PAR1 not avro"),
        Err(ContainerError::NotContainer(_))
    ));
    assert!(matches!(
        records(&container(r#"{"type":"nope"}"#, "null", &[])),
        Err(ContainerError::Schema(_))
    ));
}
