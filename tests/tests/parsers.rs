//! Property tests of every parser that reads what users and clusters send:
//! the topics.json and connections.json files, pipeline definitions and
//! Confluent-framed Avro. Whatever the input, the answer is a value or a
//! typed error that names the file; never a panic. The case count is
//! bounded (PROPTEST_CASES overrides it), so CI runs them every time.

use std::sync::OnceLock;

use proptest::prelude::*;
use sluice_host::codec::{CodecError, DatumError, MAX_DEPTH, SchemaRegistry, decode_confluent};
use sluice_host::config::{ConfigError, Connections, read_topics};
use sluice_host::enrich::PipelineDefinition;
use sluice_tests::arbitrary::{body, json};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `text` written to a fresh file, and that file's path.
fn file_with(text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file.json");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn names_the_file(error: &ConfigError, path: &std::path::Path) -> bool {
    error.to_string().contains(&path.display().to_string())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_topics_file_of_any_shape_reads_or_names_its_problem(text in body()) {
        let (_dir, path) = file_with(&text);
        match read_topics(&path) {
            Ok(entries) => {
                for entry in &entries {
                    let plan = entry.read_plan();
                    prop_assert_eq!(&plan.topic, &entry.topic);
                    let _ = plan.adjusted_offset(0, i64::MAX);
                    let _ = plan.capped_end(i64::MAX - 1, i64::MAX);
                }
            }
            Err(error) => prop_assert!(names_the_file(&error, &path), "{}", error),
        }
    }

    #[test]
    fn a_topics_entry_of_any_value_reads_or_names_its_field(entry in json()) {
        let (_dir, path) = file_with(serde_json::json!([entry]).to_string().as_bytes());
        if let Err(error) = read_topics(&path) {
            prop_assert!(error.to_string().contains("entry 0"), "{}", error);
        }
    }

    #[test]
    fn a_connections_file_of_any_shape_reads_or_names_its_problem(text in body()) {
        let (_dir, path) = file_with(&text);
        match Connections::read(&path) {
            Ok(connections) => {
                let _ = connections.kafka_config();
                let _ = connections.storage_url();
                let _ = connections.azure_credentials();
            }
            Err(error) => prop_assert!(names_the_file(&error, &path), "{}", error),
        }
    }

    #[test]
    fn a_pipeline_definition_of_any_shape_is_checked_or_refused(value in json(), text in body()) {
        for parsed in [
            PipelineDefinition::one_or_many(&value),
            PipelineDefinition::from_json(&String::from_utf8_lossy(&text)).map(|d| vec![d]),
        ] {
            match parsed {
                Ok(definitions) => {
                    for definition in definitions {
                        prop_assert!(sluice_host::transforms::is_valid(&definition.name));
                        prop_assert!(!definition.group_id().is_empty());
                        let _ = definition.metadata_pairs();
                    }
                }
                Err(error) => prop_assert!(error.to_string().starts_with("entry")
                    || error.to_string().starts_with("pipeline definition"), "{}", error),
            }
        }
    }

    #[test]
    fn a_confluent_frame_of_any_bytes_decodes_or_says_why(
        id in 0u32..4,
        rest in prop::collection::vec(any::<u8>(), 0..96),
        magic in prop_oneof![Just(0u8), any::<u8>()],
    ) {
        let mut frame = vec![magic];
        frame.extend(id.to_be_bytes());
        frame.extend(rest);
        for bytes in [&frame[..], &frame[..frame.len().min(3)]] {
            if let Err(error) = decode_confluent(bytes, registry()) {
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }
}

/// Schemas with every kind of length-prefixed value (strings, bytes,
/// arrays, maps), so arbitrary bodies reach every decoder.
fn registry() -> &'static SchemaRegistry {
    static REGISTRY: OnceLock<(sluice_tests::schema_registry::TestRegistry, SchemaRegistry)> =
        OnceLock::new();
    let (_, registry) = REGISTRY.get_or_init(|| {
        let record = r#"{"type":"record","name":"R","fields":[
            {"name":"s","type":"string"},{"name":"b","type":"bytes"},
            {"name":"a","type":{"type":"array","items":"long"}},
            {"name":"m","type":{"type":"map","values":["null","double"]}},
            {"name":"e","type":{"type":"enum","name":"E","symbols":["x","y"]}},
            {"name":"f","type":{"type":"fixed","name":"F","size":4}}]}"#;
        let server = sluice_tests::schema_registry::start(vec![
            (1, record.to_owned()),
            (2, r#""string""#.to_owned()),
            (
                3,
                r#"{"type":"array","items":{"type":"map","values":"string"}}"#.to_owned(),
            ),
        ]);
        let registry = SchemaRegistry::new(&server.url).unwrap();
        (server, registry)
    });
    registry
}

/// A stream of frames naming a schema the registry does not have costs one
/// request, not one per frame; each frame still gets the reason.
#[test]
fn an_unknown_schema_id_is_asked_for_once_while_its_answer_stands() {
    let server = sluice_tests::schema_registry::start(Vec::new());
    let registry = SchemaRegistry::new(&server.url).unwrap();
    let frame = [0u8, 0, 0, 0, 9, 2, 4];
    for _ in 0..50 {
        let error = decode_confluent(&frame, &registry).unwrap_err().to_string();
        assert!(
            error.contains("schema 9") && error.contains("404"),
            "{error}"
        );
    }
    assert_eq!(server.requests(), 1);
}

/// A linked list: a recursive schema, legitimate at any sane length.
const LIST: &str = r#"{"type":"record","name":"Node","fields":[
    {"name":"value","type":"int"},{"name":"next","type":["null","Node"]}]}"#;

/// `nodes` nodes of [`LIST`], written by hand (apache-avro's own encoder
/// recurses too): each node's value 1 and its `next`, the union's branch 1
/// (a node) or, for the last, 0 (null).
fn list_datum(nodes: usize) -> Vec<u8> {
    let mut datum = Vec::with_capacity(nodes * 2);
    for node in 1..=nodes {
        datum.extend([0x02, if node < nodes { 0x02 } else { 0x00 }]);
    }
    datum
}

fn framed(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8];
    frame.extend(id.to_be_bytes());
    frame.extend_from_slice(datum);
    frame
}

/// Runs `work` on a thread with a 256 KiB stack, so that a test proves
/// that nothing recurses without bound rather than relying on a big stack.
fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(work)
        .unwrap()
        .join()
        .unwrap()
}

/// Before the depth check, apache-avro decoded this frame recursively,
/// overflowed the stack and aborted the whole process.
#[test]
fn a_confluent_value_nested_past_the_limit_is_refused_without_overflowing_the_stack() {
    let server = sluice_tests::schema_registry::start(vec![(1, LIST.to_owned())]);
    let registry = SchemaRegistry::new(&server.url).unwrap();
    let deep = framed(1, &list_datum(100_000));
    let sane = framed(1, &list_datum(20));
    let (deep, sane) = on_small_stack(move || {
        (
            decode_confluent(&deep, &registry).map(|_| ()),
            decode_confluent(&sane, &registry),
        )
    });
    assert_eq!(
        deep,
        Err(CodecError::Avro {
            id: 1,
            source: DatumError::TooDeep { limit: MAX_DEPTH }
        })
    );
    let sane = sane.unwrap();
    assert_eq!(sane["next"]["next"]["value"], 1, "{sane}");
}

/// A schema whose JSON nests past the limit is the registry's definitive
/// answer for its id (and for the subject's typed columns): refused by
/// name on a small stack, never parsed recursively.
#[test]
fn a_registry_schema_nested_past_the_limit_is_refused() {
    let mut deep = String::new();
    for _ in 0..100_000 {
        deep.push_str(r#"{"type":"array","items":"#);
    }
    deep.push_str(r#""int""#);
    deep.push_str(&"}".repeat(100_000));
    let server = sluice_tests::schema_registry::start_with_subjects(
        vec![(5, deep)],
        vec![("deep-value".to_owned(), vec![5])],
    );
    let registry = SchemaRegistry::new(&server.url).unwrap();
    let (by_id, by_subject) = on_small_stack(move || {
        (
            decode_confluent(&framed(5, &[0]), &registry).map(|_| ()),
            registry.subject_schemas("deep-value").map(|_| ()),
        )
    });
    for error in [by_id.unwrap_err(), by_subject.unwrap_err()] {
        assert!(!error.is_unavailable(), "{error}");
        assert!(
            error
                .to_string()
                .contains("nests more than 127 levels deep"),
            "{error}"
        );
    }
}
