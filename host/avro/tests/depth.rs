//! Recursive schemas and datums nested past the limits: refused with a
//! typed error, never a stack overflow (each deep case runs on a thread
//! with a 256 KiB stack, so passing proves no unbounded recursion, not a
//! big stack); at sane depths they decode as apache-avro decodes them.

use apache_avro::Schema;
use apache_avro::types::Value;
use sluice_avro::{
    DatumError, MAX_DEPTH, MAX_EMPTY_ITEMS, MAX_SCHEMA_DEPTH, NonFinite, SchemaError, WriterSchema,
    split_frame, write_json,
};

/// A linked list: a recursive schema, legitimate at any sane length.
const LIST: &str = r#"{"type":"record","name":"Node","namespace":"ns","fields":[
    {"name":"value","type":"int"},{"name":"next","type":["null","ns.Node"]}]}"#;

/// `nodes` nodes of [`LIST`] holding 1, written by hand (apache-avro's
/// encoder recurses too): each node's value and its `next`, the union's
/// branch 1 (a node) or, for the last, 0 (null).
fn list_datum(nodes: usize) -> Vec<u8> {
    let mut datum = Vec::with_capacity(nodes * 2);
    for node in 1..=nodes {
        datum.extend([0x02, if node < nodes { 0x02 } else { 0x00 }]);
    }
    datum
}

/// Runs `work` on a thread with a 256 KiB stack, an eighth of a thread's
/// usual 2 MiB.
fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    on_stack(256, work)
}

fn on_stack<T: Send + 'static>(kib: usize, work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(kib << 10)
        .spawn(work)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_list_nested_past_the_limit_is_refused_on_a_small_stack() {
    let error = on_small_stack(|| {
        let schema = WriterSchema::parse(LIST).unwrap();
        schema.decode(&list_datum(100_000)).unwrap_err()
    });
    assert_eq!(error, DatumError::TooDeep { limit: MAX_DEPTH });
    assert!(
        error
            .to_string()
            .contains("nests more than 128 levels deep")
    );
}

#[test]
fn a_list_just_past_the_limit_is_refused_and_one_at_it_decodes() {
    let schema = WriterSchema::parse(LIST).unwrap();
    // A node is two levels: the record and its `next` union.
    let fits = MAX_DEPTH / 2;
    assert!(schema.decode(&list_datum(fits)).is_ok());
    assert_eq!(
        schema.decode(&list_datum(fits + 1)),
        Err(DatumError::TooDeep { limit: MAX_DEPTH })
    );
}

#[test]
fn a_list_at_a_sane_depth_decodes_as_apache_avro_decodes_it() {
    let schema = WriterSchema::parse(LIST).unwrap();
    let datum = list_datum(20);
    let ours = schema.decode(&datum).unwrap();
    let theirs =
        apache_avro::from_avro_datum(&Schema::parse_str(LIST).unwrap(), &mut &datum[..], None)
            .unwrap();
    assert_eq!(ours, theirs);
    let mut json = Vec::new();
    write_json(&ours, NonFinite::Refuse, &mut json).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["next"]["next"]["value"], 1);
}

#[test]
fn the_deepest_value_allowed_decodes_and_is_written_on_a_quarter_of_a_thread_stack() {
    // apache-avro's decoder, the JSON writer and the drop all recurse per
    // level: at the limit they need about 384 KiB.
    let json = on_stack(512, || {
        let schema = WriterSchema::parse(LIST).unwrap();
        let value = schema.decode(&list_datum(MAX_DEPTH / 2)).unwrap();
        let mut json = Vec::new();
        write_json(&value, NonFinite::Refuse, &mut json).unwrap();
        String::from_utf8(json).unwrap()
    });
    assert_eq!(json.matches(r#"{"value":1,"next":"#).count(), MAX_DEPTH / 2);
}

#[test]
fn a_tree_of_maps_and_arrays_is_bounded_the_same_way() {
    let tree = r#"{"type":"record","name":"Tree","fields":[
        {"name":"children","type":{"type":"array","items":{"type":"map","values":"Tree"}}}]}"#;
    // Each level: one array block of one item, a map block of one entry
    // (key "k"), then the two blocks' ends.
    let datum = |levels: usize| {
        let mut datum = Vec::new();
        for _ in 0..levels {
            datum.extend([0x02, 0x02, 0x02, b'k']);
        }
        datum.push(0x00); // the innermost tree's empty array
        for _ in 0..levels {
            datum.extend([0x00, 0x00]);
        }
        datum
    };
    let error = on_small_stack(move || {
        let schema = WriterSchema::parse(tree).unwrap();
        assert!(schema.decode(&datum(10)).is_ok());
        schema.decode(&datum(50_000)).unwrap_err()
    });
    assert_eq!(error, DatumError::TooDeep { limit: MAX_DEPTH });
}

#[test]
fn a_record_that_contains_itself_without_a_union_is_refused() {
    // Every datum of this schema is infinite; apache-avro recurses forever
    // without reading a byte.
    let error = on_small_stack(|| {
        let schema = WriterSchema::parse(
            r#"{"type":"record","name":"Loop","fields":[{"name":"again","type":"Loop"}]}"#,
        )
        .unwrap();
        schema.decode(&[]).unwrap_err()
    });
    assert_eq!(error, DatumError::TooDeep { limit: MAX_DEPTH });
}

#[test]
fn a_schema_nested_past_its_limit_is_refused_on_a_small_stack() {
    let nested = |levels: usize| {
        let mut text = String::new();
        for _ in 0..levels {
            text.push_str(r#"{"type":"array","items":"#);
        }
        text.push_str(r#""int""#);
        text.push_str(&"}".repeat(levels));
        text
    };
    let deeper = on_small_stack(move || WriterSchema::parse(&nested(100_000)).map(drop));
    assert_eq!(
        deeper,
        Err(SchemaError::TooDeep {
            limit: MAX_SCHEMA_DEPTH
        })
    );
    // apache-avro's parser recurses per level: the deepest schema allowed
    // needs about 400 KiB.
    let deepest = on_stack(512, move || {
        WriterSchema::parse(&nested(MAX_SCHEMA_DEPTH)).map(drop)
    });
    assert_eq!(deepest, Ok(()));
    // Brackets inside strings are text, not nesting.
    let doc = format!(
        r#"{{"type":"record","name":"R","doc":"{}","fields":[]}}"#,
        "[".repeat(1000)
    );
    assert!(WriterSchema::parse(&doc).is_ok());
}

#[test]
fn a_datum_cut_short_is_refused_where_apache_avro_reads_nulls() {
    let schema = r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"},{"name":"s","type":"string"}]}"#;
    let cut = [0x02, 0x0a, b'a', b'b']; // id 1, then a string of 5 bytes with 2
    let apache =
        apache_avro::from_avro_datum(&Schema::parse_str(schema).unwrap(), &mut &cut[..], None);
    assert!(
        matches!(apache, Ok(Value::Record(ref f)) if f[1].1 == Value::Null),
        "{apache:?}"
    );
    assert_eq!(
        WriterSchema::parse(schema).unwrap().decode(&cut),
        Err(DatumError::EndsEarly { what: "a string" })
    );
}

#[test]
fn items_that_take_no_bytes_are_bounded() {
    let schema = WriterSchema::parse(r#"{"type":"array","items":"null"}"#).unwrap();
    // Three blocks: 5 items, 3 items (negative count, with a byte size),
    // then the end.
    let few = [0x0a, 0x05, 0x00, 0x00];
    assert_eq!(schema.decode(&few), Ok(Value::Array(vec![Value::Null; 8])));
    // A count of 2^62 nulls in 10 bytes: apache-avro would try to reserve
    // them all.
    let mut many = vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
    many.push(0x00);
    assert_eq!(
        schema.decode(&many),
        Err(DatumError::TooManyEmptyItems {
            limit: MAX_EMPTY_ITEMS
        })
    );
}

#[test]
fn malformed_datums_say_what_is_wrong() {
    let union = WriterSchema::parse(r#"["null","string"]"#).unwrap();
    assert_eq!(
        union.decode(&[0x04]),
        Err(DatumError::UnionBranch {
            index: 2,
            variants: 2
        })
    );
    assert_eq!(
        union.decode(&[0x02, 0x01]),
        Err(DatumError::NegativeLength {
            what: "a string",
            length: -1
        })
    );
    assert_eq!(union.decode(&[0x00, 0x00]), Err(DatumError::LeftOver(1)));
    let long = WriterSchema::parse(r#""long""#).unwrap();
    assert_eq!(long.decode(&[0xff; 11]), Err(DatumError::LongVarint));
    // What only apache-avro checks is still refused, in its words.
    let boolean = WriterSchema::parse(r#""boolean""#).unwrap();
    assert!(matches!(boolean.decode(&[7]), Err(DatumError::Decoder(_))));
}

#[test]
fn named_types_resolve_in_their_namespaces() {
    // `Inner` is defined in namespace `a` and referred to from a record in
    // namespace `b` by its full name, and recursively by its short name.
    let schema = WriterSchema::parse(
        r#"{"type":"record","name":"Outer","namespace":"b","fields":[
            {"name":"first","type":{"type":"record","name":"Inner","namespace":"a","fields":[
                {"name":"more","type":["null","Inner"]}]}},
            {"name":"second","type":"a.Inner"}]}"#,
    )
    .unwrap();
    let value = schema.decode(&[0x02, 0x00, 0x00]).unwrap();
    let mut json = Vec::new();
    write_json(&value, NonFinite::Refuse, &mut json).unwrap();
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"{"first":{"more":{"more":null}},"second":{"more":null}}"#
    );
}

#[test]
fn a_confluent_frame_gives_its_id_and_body() {
    let schema = WriterSchema::parse(LIST).unwrap();
    let mut frame = vec![0, 0, 0, 0, 7];
    frame.extend(list_datum(2));
    let (id, body) = split_frame(&frame).unwrap();
    assert_eq!(id, 7);
    assert!(schema.decode(body).is_ok());
}

#[test]
fn a_name_apache_avro_would_panic_on_is_refused() {
    // apache-avro 0.21 unwraps the validation of these (found by fuzzing).
    for schema in [
        r#"{"type":"record","name":"Inner,","fields":[]}"#,
        r#"{"type":"enum","name":"E","aliases":["not valid"],"symbols":["a"]}"#,
        r#"{"type":"fixed","name":"9lives","size":1}"#,
    ] {
        assert!(
            matches!(WriterSchema::parse(schema), Err(SchemaError::Invalid(ref reason)) if reason.contains("is not a valid name")),
            "{schema}"
        );
    }
    for name in ["a", "_a1", "ns.a", "a.b.c", ".a"] {
        let schema = format!(r#"{{"type":"fixed","name":"{name}","size":1}}"#);
        assert!(WriterSchema::parse(&schema).is_ok(), "{name}");
    }
}
