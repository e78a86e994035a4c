//! The export's exactly-once promise tried where it breaks: a run that
//! stored its files but did not commit, then a topic that grew; re-exports
//! of grown topics; dead letters stored without their data file; batches
//! polled differently; values that are not what they claim. After each,
//! the union of every file holds every record exactly once.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{Array, Int32Array, Int64Array, StringArray};
use sluice_host::export::{ExportOptions, dead_letter_key, export_topic};
use sluice_host::kafka::ensure_topic;
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_tests::exports::{assert_exactly_once, export, set_group_offset, values};
use sluice_tests::{broker, fresh_topic, plan, produce_to};

fn local(root: &Path) -> Storage {
    Storage::open(root.to_str().unwrap(), &AzureCredentials::default()).unwrap()
}

/// Every data file under `root` (the export's files, not its dead
/// letters or staging): how many times each (partition, Kafka offset)
/// appears, and the files' names.
fn stored_rows(root: &Path) -> (BTreeMap<(i32, i64), usize>, Vec<String>) {
    let names = sluice_tests::stored::files_under(root)
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet") && !n.starts_with('_'))
        .collect();
    (sluice_tests::stored::stored_offsets(root, false), names)
}

#[test]
fn files_stored_but_not_committed_are_not_stored_again_when_the_topic_grows() {
    let config = broker();
    let topic = fresh_topic("eo-crash");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 1000));
    let (group, root) = (fresh_topic("g"), tempfile::tempdir().unwrap());
    let storage = local(root.path());
    let options = ExportOptions::new("run-a");
    let first = export(
        &config,
        &topic,
        &group,
        serde_json::json!({}),
        &storage,
        &options,
    );
    assert_eq!(first.records, 1000);

    // The run stored its file and stopped before its commit.
    set_group_offset(&config, &topic, &group, 0);
    produce_to(&config, &topic, 0, &values(1000, 1500));
    let second = export(
        &config,
        &topic,
        &group,
        serde_json::json!({}),
        &storage,
        &ExportOptions::new("run-b"),
    );
    assert_eq!(second.records, 500, "only what the storage does not hold");
    let (rows, names) = stored_rows(root.path());
    assert_exactly_once(&rows, 1500);
    assert_eq!(
        names,
        [
            format!("topic={topic}/partition=0/{topic}+0+0-999.parquet"),
            format!("topic={topic}/partition=0/{topic}+0+1000-1499.parquet"),
        ]
    );
}

#[test]
fn a_re_export_of_a_grown_topic_replaces_its_files_whole() {
    let config = broker();
    let topic = fresh_topic("eo-reset");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 1000));
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let reset = serde_json::json!({"reset_offsets": true});
    let options = ExportOptions::new("run");
    export(
        &config,
        &topic,
        &fresh_topic("g"),
        reset.clone(),
        &storage,
        &options,
    );
    produce_to(&config, &topic, 0, &values(1000, 1500));
    let again = export(
        &config,
        &topic,
        &fresh_topic("g"),
        reset,
        &storage,
        &options,
    );
    assert_eq!((again.records, again.superseded), (1500, 1));
    let (rows, names) = stored_rows(root.path());
    assert_exactly_once(&rows, 1500);
    assert_eq!(
        names,
        [format!(
            "topic={topic}/partition=0/{topic}+0+0-1499.parquet"
        )]
    );
}

#[test]
fn a_re_export_starting_inside_a_stored_file_rewrites_that_file_whole() {
    let config = broker();
    let topic = fresh_topic("eo-inside");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 300));
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let options = ExportOptions::new("run");
    let group = fresh_topic("g");
    export(
        &config,
        &topic,
        &group,
        serde_json::json!({}),
        &storage,
        &options,
    );
    produce_to(&config, &topic, 0, &values(300, 400));
    // From offset 150 for 200 records: 150..350 lies partly in 0-299.
    let range = serde_json::json!({"starting_offsets": {"0": 150}, "num_messages": 200});
    let rerun = export(
        &config,
        &topic,
        &fresh_topic("g"),
        range,
        &storage,
        &options,
    );
    assert_eq!(
        rerun.records, 350,
        "0-299 read again, so it is replaced whole"
    );
    let (rows, names) = stored_rows(root.path());
    assert_exactly_once(&rows, 350);
    assert_eq!(
        names,
        [format!("topic={topic}/partition=0/{topic}+0+0-349.parquet")]
    );
    // The group goes on from there and the rest lands once.
    let rest = export(
        &config,
        &topic,
        &group,
        serde_json::json!({}),
        &storage,
        &options,
    );
    assert_eq!(rest.records, 50);
    assert_exactly_once(&stored_rows(root.path()).0, 400);
}

#[test]
fn file_boundaries_follow_offsets_not_how_records_were_polled() {
    let config = broker();
    let topic = fresh_topic("eo-blocks");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 37));
    let mut names = Vec::new();
    for batch_size in [1, 7, 1000] {
        let root = tempfile::tempdir().unwrap();
        let mut options = ExportOptions::new("run");
        options.max_rows_per_file = 10;
        options.batch_size = batch_size;
        let group = fresh_topic("g");
        // Two runs, the second from where the first stopped (offset 13).
        let first = serde_json::json!({"num_messages": 13});
        export(
            &config,
            &topic,
            &group,
            first,
            &local(root.path()),
            &options,
        );
        export(
            &config,
            &topic,
            &group,
            serde_json::json!({}),
            &local(root.path()),
            &options,
        );
        let (rows, found) = stored_rows(root.path());
        assert_exactly_once(&rows, 37);
        names.push(found);
    }
    let expected: Vec<String> = ["0-9", "10-12", "13-19", "20-29", "30-36"]
        .iter()
        .map(|r| format!("topic={topic}/partition=0/{topic}+0+{r}.parquet"))
        .collect();
    assert!(names.iter().all(|n| *n == expected), "{names:#?}");
}

#[test]
fn dead_letters_stored_without_their_data_file_are_removed_and_written_again_once() {
    let config = broker();
    let topic = fresh_topic("eo-dlq");
    ensure_topic(&config, &topic, 1).unwrap();
    let mut first = values(0, 10);
    first[3] = "not json".into();
    produce_to(&config, &topic, 0, &first);
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    // A run that stored the dead letters of 0-9 and crashed before the
    // data file (dead letters go first).
    let orphan = root.path().join(dead_letter_key(&topic, 0, 0, 9));
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, "{\"offset\": 3}\n").unwrap();
    let mut more = values(10, 15);
    more[1] = "{broken".into();
    produce_to(&config, &topic, 0, &more);
    let report = export(
        &config,
        &topic,
        &fresh_topic("g"),
        serde_json::json!({}),
        &storage,
        &ExportOptions::new("run"),
    );
    assert_eq!((report.records, report.dead_lettered), (15, 2));
    assert!(!orphan.exists(), "the orphaned dead letters are gone");
    let dead_dir = root
        .path()
        .join(format!("_dead_letters/topic={topic}/partition=0"));
    let dead: Vec<_> = std::fs::read_dir(&dead_dir).unwrap().flatten().collect();
    assert_eq!(dead.len(), 1);
    let lines = std::fs::read_to_string(dead[0].path()).unwrap();
    let offsets: Vec<i64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, [3, 11], "each bad record once");
    let (rows, _) = stored_rows(root.path());
    assert_eq!(rows.len(), 13);
}

#[test]
fn bytes_that_are_not_utf8_inside_a_json_value_are_dead_lettered_not_blanked() {
    let config = broker();
    let topic = fresh_topic("eo-utf8");
    ensure_topic(&config, &topic, 1).unwrap();
    let bad: &[u8] = b"{\"a\": \"\xff\xfe\"}";
    produce_to(&config, &topic, 0, &[br#"{"a": "ok"}"#.as_slice(), bad]);
    let root = tempfile::tempdir().unwrap();
    let report = export(
        &config,
        &topic,
        &fresh_topic("g"),
        serde_json::json!({}),
        &local(root.path()),
        &ExportOptions::new("run"),
    );
    assert_eq!((report.records, report.dead_lettered), (2, 1));
    let batch = sluice_tests::read_parquet(&root.path().join(&report.files[0].key));
    let values = batch.column_by_name("value").unwrap();
    let values = values.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!((values.len(), values.value(0)), (1, r#"{"a": "ok"}"#));
    let dead =
        std::fs::read_to_string(root.path().join(report.dead_letter_files().next().unwrap()))
            .unwrap();
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(dead["value_hex"], hex::encode(bad));
    assert!(dead["reason"].as_str().unwrap().contains("UTF-8"), "{dead}");
}

/// Confluent-framed Avro records to partition 0 of a fresh topic, with a
/// registry serving `schemas` and the topic's subject at `subject_ids`.
fn avro_topic(
    prefix: &str,
    schemas: Vec<(u32, String)>,
    subject_ids: Vec<u32>,
    values: Vec<Vec<u8>>,
) -> (String, sluice_tests::schema_registry::TestRegistry) {
    let topic = fresh_topic(prefix);
    let registry = sluice_tests::schema_registry::start_with_subjects(
        schemas,
        vec![(format!("{topic}-value"), subject_ids)],
    );
    let config = broker();
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values);
    (topic, registry)
}

fn avro_options(registry: &sluice_tests::schema_registry::TestRegistry) -> ExportOptions {
    let mut options = ExportOptions::new("avro");
    options.registry = Some(std::sync::Arc::new(
        sluice_host::codec::SchemaRegistry::new(&registry.url).unwrap(),
    ));
    options
}

#[test]
fn an_avro_value_its_typed_column_cannot_hold_is_dead_lettered_not_changed() {
    use apache_avro::Schema;
    use apache_avro::types::Value as Avro;
    use sluice_tests::schema_registry::confluent_avro;
    // The subject says `n` is an int; a producer wrote one record with a
    // schema outside the subject, where `n` is a long too large for it.
    let int = r#"{"type":"record","name":"R","fields":[{"name":"n","type":"int"}]}"#;
    let long = r#"{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}"#;
    let (si, sl) = (
        Schema::parse_str(int).unwrap(),
        Schema::parse_str(long).unwrap(),
    );
    let record = |v| Avro::Record(vec![("n".into(), v)]);
    let (topic, registry) = avro_topic(
        "eo-lossy",
        vec![(1, int.into()), (2, long.into())],
        vec![1],
        vec![
            confluent_avro(1, &si, record(Avro::Int(7))),
            confluent_avro(2, &sl, record(Avro::Long(3_000_000_000))),
            confluent_avro(2, &sl, record(Avro::Long(8))),
        ],
    );
    let root = tempfile::tempdir().unwrap();
    let report = export(
        &broker(),
        &topic,
        &fresh_topic("g"),
        serde_json::json!({}),
        &local(root.path()),
        &avro_options(&registry),
    );
    assert_eq!((report.records, report.dead_lettered), (3, 1));
    let batch = sluice_tests::read_parquet(&root.path().join(&report.files[0].key));
    let n = batch.column_by_name("n").unwrap();
    let n = n.as_any().downcast_ref::<Int32Array>().unwrap();
    assert_eq!(
        n.values().to_vec(),
        [7, 8],
        "no null stands in for the big one"
    );
    let dead =
        std::fs::read_to_string(root.path().join(report.dead_letter_files().next().unwrap()))
            .unwrap();
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(dead["offset"], 1);
    let reason = dead["reason"].as_str().unwrap();
    assert!(
        reason.contains("field `n`") && reason.contains("3000000000"),
        "{reason}"
    );
}

#[test]
fn the_aggregator_sees_exactly_the_records_the_files_keep_decoded() {
    use apache_avro::Schema;
    use apache_avro::types::Value as Avro;
    use sluice_host::generate::{ExpediaGenerator, StayMix};
    use sluice_host::runtime::Limits;
    use sluice_tests::schema_registry::confluent_avro;
    let schema_text = r#"{"type":"record","name":"Booking","fields":[{"name":"id","type":"long"},{"name":"hotel_id","type":"long"},{"name":"srch_ci","type":["null","string"]},{"name":"srch_co","type":["null","string"]}]}"#;
    let schema = Schema::parse_str(schema_text).unwrap();
    let text = |v: &serde_json::Value| match v.as_str() {
        Some(s) => Avro::Union(1, Box::new(Avro::String(s.to_owned()))),
        None => Avro::Union(0, Box::new(Avro::Null)),
    };
    let bookings: Vec<serde_json::Value> = ExpediaGenerator::new(5, StayMix::default())
        .take(200)
        .collect();
    let mut values: Vec<Vec<u8>> = bookings
        .iter()
        .map(|b| {
            confluent_avro(
                1,
                &schema,
                Avro::Record(vec![
                    ("id".into(), Avro::Long(b["id"].as_i64().unwrap())),
                    (
                        "hotel_id".into(),
                        Avro::Long(b["hotel_id"].as_i64().unwrap()),
                    ),
                    ("srch_ci".into(), text(&b["srch_ci"])),
                    ("srch_co".into(), text(&b["srch_co"])),
                ]),
            )
        })
        .collect();
    values.push(b"not avro".to_vec());
    let (topic, registry) = avro_topic("eo-agg", vec![(1, schema_text.into())], vec![1], values);
    let root = tempfile::tempdir().unwrap();
    let summary = sluice_tests::transform("stay-summary")
        .aggregator(Limits::default(), std::sync::Arc::default())
        .unwrap();
    let report = export_topic(
        &broker(),
        &plan(&topic, &fresh_topic("g"), serde_json::json!({})),
        &local(root.path()),
        &avro_options(&registry),
        Some(summary),
        |_| {},
    )
    .unwrap();
    assert_eq!((report.records, report.dead_lettered), (201, 1));
    let key = report.aggregate.clone().unwrap().key;
    let batch = sluice_tests::read_parquet(&root.path().join(key));
    let counts = batch.column_by_name("count_all").unwrap();
    let counts = counts.as_any().downcast_ref::<Int64Array>().unwrap();
    let total: i64 = counts.values().iter().sum();
    assert_eq!(
        total, 200,
        "every decoded booking once, the bad frame never"
    );
}

/// Kafka topic names often hold dots (`orders.eu`, `expedia_ext.2026`):
/// each partition still gets its own staging file and its own stored file.
#[test]
fn a_topic_name_with_dots_gets_one_file_per_partition() {
    let config = broker();
    let topic = format!("eo.dotted.{}", fresh_topic("t"));
    ensure_topic(&config, &topic, 3).unwrap();
    for partition in 0..3 {
        let mut rows = values(0, 5);
        rows[2] = "not json".into();
        produce_to(&config, &topic, partition, &rows);
    }
    let root = tempfile::tempdir().unwrap();
    let report = export(
        &config,
        &topic,
        &fresh_topic("g"),
        serde_json::json!({}),
        &local(root.path()),
        &ExportOptions::new("run"),
    );
    assert_eq!(
        (report.records, report.dead_lettered, report.files.len()),
        (15, 3, 3)
    );
    let (rows, names) = stored_rows(root.path());
    assert_eq!(rows.len(), 12);
    assert_eq!(
        names,
        (0..3)
            .map(|p| format!("topic={topic}/partition={p}/{topic}+{p}+0-4.parquet"))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.dead_letter_files().count(), 3);
}

/// Many partitions, each with an open file: the row groups they hold in
/// memory together stay within the budget (the largest are written out),
/// and nothing is lost or repeated on the way.
#[test]
fn open_files_write_their_row_groups_out_within_a_memory_budget() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let config = broker();
    let topic = fresh_topic("eo-budget");
    ensure_topic(&config, &topic, 8).unwrap();
    let padding = "x".repeat(400);
    let rows: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"i":{i},"pad":"{padding}"}}"#))
        .collect();
    for partition in 0..8 {
        produce_to(&config, &topic, partition, &rows);
    }
    let root = tempfile::tempdir().unwrap();
    let mut options = ExportOptions::new("run");
    options.memory_budget = 64 << 10;
    options.batch_size = 100;
    let report = export(
        &config,
        &topic,
        &fresh_topic("g"),
        serde_json::json!({}),
        &local(root.path()),
        &options,
    );
    assert_eq!((report.records, report.files.len()), (2400, 8));
    let mut groups = 0;
    for file in &report.files {
        let reader =
            SerializedFileReader::new(std::fs::File::open(root.path().join(&file.key)).unwrap())
                .unwrap();
        groups += reader.metadata().num_row_groups();
    }
    assert!(groups > 8, "row groups were written out early: {groups}");
    let (stored, _) = stored_rows(root.path());
    assert_eq!(stored.len(), 2400);
    assert!(stored.values().all(|n| *n == 1));
}
