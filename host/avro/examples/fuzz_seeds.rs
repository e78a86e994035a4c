//! Writes the seed corpus of the fuzz targets (`host/fuzz/seeds/`): valid
//! frames, container files and schemas to start from, and the cases the
//! limits exist for. The seeds are kept in the repository; this rewrites
//! them when a target or a schema changes:
//!
//! `cargo run -p sluice-avro --example fuzz_seeds -- host/fuzz/seeds`

use std::path::Path;

use apache_avro::types::Value;
use apache_avro::{Codec, Schema, Writer};

#[allow(dead_code)]
mod schemas {
    include!("../../fuzz/fuzz_targets/schemas.rs");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args()
        .nth(1)
        .ok_or("usage: fuzz_seeds FOLDER (host/fuzz/seeds)")?;
    let root = Path::new(&root);
    let write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let folder = root.join(target);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(name), bytes)
    };

    // Frames: each schema's id is its index in `schemas::SCHEMAS`.
    let frame = |id: u32, datum: &[u8]| {
        let mut frame = vec![0u8];
        frame.extend(id.to_be_bytes());
        frame.extend_from_slice(datum);
        frame
    };
    for nodes in [1, 3, 64, 65, 1000] {
        write(
            "confluent_frame",
            &format!("list-{nodes}"),
            &frame(0, &list(nodes)),
        )?;
    }
    write("confluent_frame", "tree", &frame(1, &tree(3)))?;
    write("confluent_frame", "tree-deep", &frame(1, &tree(200)))?;
    let every_kind = Schema::parse_str(schemas::EVERY_KIND)?;
    let all = apache_avro::to_avro_datum(&every_kind, every_kind_value(true)?)?;
    write("confluent_frame", "every-kind", &frame(2, &all))?;
    write(
        "confluent_frame",
        "namespaced",
        &frame(3, &[0x02, 0x00, 0x00, 0x00]),
    )?;
    write(
        "confluent_frame",
        "nulls",
        &frame(4, &[0x0a, 0x05, 0x00, 0x00]),
    )?;
    write("confluent_frame", "loop", &frame(5, &[]))?;

    // Container files: every codec, several blocks, a deep record.
    for (name, codec) in [
        ("null", Codec::Null),
        ("deflate", Codec::Deflate(Default::default())),
        ("snappy", Codec::Snappy),
    ] {
        let mut writer = Writer::with_codec(&every_kind, Vec::new(), codec);
        writer.append(every_kind_value(true)?)?;
        writer.flush()?;
        writer.append(every_kind_value(false)?)?;
        write(
            "container_file",
            &format!("every-kind-{name}.avro"),
            &writer.into_inner()?,
        )?;
    }
    let list_schema = Schema::parse_str(schemas::LIST)?;
    let mut writer = Writer::new(&list_schema, Vec::new());
    writer.append(apache_avro::from_avro_datum(
        &list_schema,
        &mut &list(5)[..],
        None,
    )?)?;
    let mut lists = writer.into_inner()?;
    let sync = lists[lists.len() - 16..].to_vec();
    let deep = list(200);
    lists.push(0x02);
    lists.extend(long(deep.len() as i64));
    lists.extend(deep);
    lists.extend(sync);
    write("container_file", "lists-deep.avro", &lists)?;

    // Schemas, each with a datum after a NUL.
    for (name, text, datum) in [
        ("list", schemas::LIST, list(3)),
        ("tree", schemas::TREE, tree(2)),
        ("every-kind", schemas::EVERY_KIND, all.clone()),
        (
            "namespaced",
            schemas::NAMESPACED,
            vec![0x02, 0x00, 0x00, 0x00],
        ),
        ("loop", schemas::LOOP, Vec::new()),
    ] {
        let mut input = text.as_bytes().to_vec();
        input.push(0);
        input.extend(datum);
        write("schema", name, &input)?;
    }
    let mut nested = r#"{"type":"array","items":"#.repeat(130);
    nested.push_str(r#""int""#);
    nested.push_str(&"}".repeat(130));
    write("schema", "nested-arrays", nested.as_bytes())?;
    Ok(())
}

fn long(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    while z > 0x7f {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
    out
}

/// A list of `nodes` nodes holding 1.
fn list(nodes: usize) -> Vec<u8> {
    let mut datum = Vec::new();
    for node in 1..=nodes {
        datum.extend([0x02, if node < nodes { 0x02 } else { 0x00 }]);
    }
    datum
}

/// A tree `levels` deep: one child per level, under the key "k".
fn tree(levels: usize) -> Vec<u8> {
    let mut datum = Vec::new();
    for _ in 0..levels {
        datum.extend([0x02, b'n', 0x02, 0x02, 0x02, b'k']);
    }
    datum.extend([0x02, b'n', 0x00]);
    for _ in 0..levels {
        datum.extend([0x00, 0x00]);
    }
    datum
}

fn every_kind_value(nested: bool) -> Result<Value, Box<dyn std::error::Error>> {
    let again = if nested {
        Value::Union(3, Box::new(every_kind_value(false)?))
    } else {
        Value::Union(2, Box::new(Value::Enum(1, "y".into())))
    };
    Ok(Value::Record(vec![
        ("b".into(), Value::Boolean(true)),
        ("i".into(), Value::Int(-7)),
        ("l".into(), Value::Long(1 << 40)),
        ("f".into(), Value::Float(1.5)),
        ("d".into(), Value::Double(-0.25)),
        ("by".into(), Value::Bytes(vec![0, 1, 2])),
        ("s".into(), Value::String("é\"\\\n".into())),
        ("fx".into(), Value::Fixed(4, vec![1, 2, 3, 4])),
        ("e".into(), Value::Enum(2, "z".into())),
        (
            "a".into(),
            Value::Array(vec![Value::Long(1), Value::Long(-1)]),
        ),
        (
            "m".into(),
            Value::Map(
                [
                    (
                        "x".to_owned(),
                        Value::Union(1, Box::new(Value::Double(2.0))),
                    ),
                    ("y".to_owned(), Value::Union(0, Box::new(Value::Null))),
                ]
                .into(),
            ),
        ),
        ("dec".into(), Value::Decimal(vec![0x01, 0x00].into())),
        (
            "decf".into(),
            Value::Decimal(vec![0, 0, 0, 0, 0, 0, 0x30, 0x39].into()),
        ),
        (
            "u".into(),
            Value::Uuid(apache_avro::Uuid::from_u128(
                0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
            )),
        ),
        ("date".into(), Value::Date(19_000)),
        ("tm".into(), Value::TimeMillis(1000)),
        ("tu".into(), Value::TimeMicros(1_000_000)),
        ("ts".into(), Value::TimestampMillis(1_700_000_000_000)),
        (
            "tsn".into(),
            Value::TimestampNanos(1_700_000_000_000_000_000),
        ),
        (
            "lts".into(),
            Value::LocalTimestampMicros(1_700_000_000_000_000),
        ),
        (
            "dur".into(),
            Value::Duration(apache_avro::Duration::new(
                apache_avro::Months::new(1),
                apache_avro::Days::new(2),
                apache_avro::Millis::new(3),
            )),
        ),
        ("bd".into(), Value::BigDecimal("12.5".parse()?)),
        ("again".into(), again),
    ]))
}
