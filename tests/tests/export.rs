//! The export against the real broker, written to a local folder and read
//! back with the parquet reader.

use std::path::{Path, PathBuf};

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_host::export::{ExportOptions, export_topic};
use sluice_host::kafka::ensure_topic;
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_tests::{broker, fresh_topic, plan, produce_to, read_parquet};

fn local(root: &Path) -> Storage {
    Storage::open(root.to_str().unwrap(), &AzureCredentials::default()).unwrap()
}

fn json_values(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!(r#"{{"i":{i}}}"#)).collect()
}

fn files(root: &Path) -> Vec<PathBuf> {
    sluice_tests::stored::files_under(root)
}

fn int64(batch: &RecordBatch, column: &str) -> Vec<i64> {
    let array = batch.column_by_name(column).unwrap();
    array
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

#[test]
fn files_per_partition_named_by_offsets_then_the_group_resumes() {
    let config = broker();
    let topic = fresh_topic("orders");
    ensure_topic(&config, &topic, 3).unwrap();
    let mut p0 = json_values(0, 10);
    p0[4] = "not json".to_owned();
    produce_to(&config, &topic, 0, &p0);
    produce_to(&config, &topic, 1, &json_values(0, 3));
    let group = fresh_topic("export-group");
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let options = ExportOptions::new("run-1");

    let report = export_topic(
        &config,
        &plan(&topic, &group, serde_json::json!({})),
        &storage,
        &options,
        None,
        |_| {},
    )
    .unwrap();
    assert_eq!(
        (report.records, report.dead_lettered, report.partitions),
        (13, 1, 2)
    );
    let written: Vec<String> = files(root.path())
        .iter()
        .map(|p| {
            p.strip_prefix(root.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        written,
        vec![
            format!("_dead_letters/topic={topic}/partition=0/{topic}+0+0-9.jsonl"),
            format!("topic={topic}/partition=0/{topic}+0+0-9.parquet"),
            format!("topic={topic}/partition=1/{topic}+1+0-2.parquet"),
        ]
    );
    let batch = read_parquet(&root.path().join(&report.files[0].key));
    assert_eq!(
        int64(&batch, "kafka_offset"),
        vec![0, 1, 2, 3, 5, 6, 7, 8, 9]
    );
    let values = batch.column_by_name("value").unwrap();
    let values = values.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(values.value(4), r#"{"i":5}"#);
    let dead = std::fs::read_to_string(
        root.path().join(
            report
                .dead_letter_files()
                .next()
                .expect("a dead-letter file"),
        ),
    )
    .unwrap();
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(
        (dead["partition"].as_i64(), dead["offset"].as_i64()),
        (Some(0), Some(4))
    );
    assert_eq!(dead["value_hex"], hex_of("not json"));

    // Committed: a second run finds nothing new, then only what came since.
    let again = export_topic(
        &config,
        &plan(&topic, &group, serde_json::json!({})),
        &storage,
        &options,
        None,
        |_| {},
    )
    .unwrap();
    assert_eq!((again.records, again.files.len()), (0, 0));
    produce_to(&config, &topic, 1, &json_values(3, 5));
    let third = export_topic(
        &config,
        &plan(&topic, &group, serde_json::json!({})),
        &storage,
        &options,
        None,
        |_| {},
    )
    .unwrap();
    assert_eq!(third.records, 2);
    assert_eq!(
        third.files[0].key.rsplit('/').next().unwrap(),
        format!("{topic}+1+3-4.parquet")
    );
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_rerun_of_the_same_range_rewrites_the_same_file() {
    let config = broker();
    let topic = fresh_topic("clicks");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &json_values(0, 20));
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let options = ExportOptions::new("run");
    let range = serde_json::json!({"starting_offsets": {"0": 5}, "num_messages": 10, "offset_increment": {"0": 1000}});

    let first = export_topic(
        &config,
        &plan(&topic, &fresh_topic("g"), range.clone()),
        &storage,
        &options,
        None,
        |_| {},
    )
    .unwrap();
    let content = std::fs::read(root.path().join(&first.files[0].key)).unwrap();
    let second = export_topic(
        &config,
        &plan(&topic, &fresh_topic("g"), range),
        &storage,
        &options,
        None,
        |_| {},
    )
    .unwrap();
    assert_eq!(first.files[0].key, second.files[0].key);
    assert_eq!(files(root.path()).len(), 1, "no duplicate file");
    assert_eq!(
        std::fs::read(root.path().join(&second.files[0].key)).unwrap(),
        content,
        "identical bytes"
    );
    let batch = read_parquet(&root.path().join(&second.files[0].key));
    assert_eq!(int64(&batch, "kafka_offset"), (5..15).collect::<Vec<_>>());
    assert_eq!(
        int64(&batch, "offset"),
        (1005..1015).collect::<Vec<_>>(),
        "offset_increment applied"
    );
    assert_eq!(batch.column_by_name("timestamp").unwrap().null_count(), 0);
}

#[test]
fn a_row_cap_starts_new_files() {
    let config = broker();
    let topic = fresh_topic("big");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &json_values(0, 25));
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let mut options = ExportOptions::new("run");
    options.max_rows_per_file = 10;
    options.batch_size = 10;
    let report = export_topic(
        &config,
        &plan(&topic, &fresh_topic("g"), serde_json::json!({})),
        &storage,
        &options,
        None,
        |_| {},
    )
    .unwrap();
    let ranges: Vec<(i64, i64, u64)> = report
        .files
        .iter()
        .map(|f| (f.first, f.last, f.rows))
        .collect();
    assert_eq!(ranges, vec![(0, 9, 10), (10, 19, 10), (20, 24, 5)]);
}

#[test]
fn an_export_to_azure_storage_is_read_back_from_azurite() {
    use sluice_tests::azurite;

    let config = broker();
    let topic = fresh_topic("azure");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &json_values(0, 7));
    let url = sluice_tests::azurite_url("exports", "landing");
    let storage = Storage::open(&url, &azurite::credentials()).unwrap();
    let options = ExportOptions::new("run");
    let report = export_topic(
        &config,
        &plan(&topic, &fresh_topic("g"), serde_json::json!({})),
        &storage,
        &options,
        None,
        |_| {},
    )
    .unwrap();
    assert_eq!(report.files.len(), 1);
    assert!(
        !report.files[0].staging.exists(),
        "the local staging file is removed after upload"
    );

    // Read back through the Blob API, then as Parquet.
    let bytes = storage.get(&report.files[0].key).unwrap();
    assert_eq!(bytes.len() as u64, report.files[0].bytes);
    let batch = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(int64(&batch, "kafka_offset"), (0..7).collect::<Vec<_>>());
    let missing = storage.get("topic=nothing/here.parquet");
    assert!(missing.is_err());
}

#[test]
fn an_aggregator_result_lands_beside_the_data() {
    use sluice_host::generate::{ExpediaGenerator, StayMix};
    use sluice_host::runtime::Limits;

    let config = broker();
    let topic = fresh_topic("expedia-export");
    ensure_topic(&config, &topic, 2).unwrap();
    let bookings: Vec<String> = ExpediaGenerator::new(21, StayMix::default())
        .take(300)
        .map(|b| b.to_string())
        .collect();
    produce_to(&config, &topic, 1, &bookings);
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let summary = sluice_tests::transform("stay-summary")
        .aggregator(Limits::default(), std::sync::Arc::default())
        .unwrap();
    let report = export_topic(
        &config,
        &plan(&topic, &fresh_topic("g"), serde_json::json!({})),
        &storage,
        &ExportOptions::new("run-9"),
        Some(summary),
        |_| {},
    )
    .unwrap();
    let aggregate = report.aggregate.clone().unwrap();
    let (key, rows) = (aggregate.key, aggregate.rows);
    assert_eq!(aggregate.refused, 0);
    assert_eq!(
        key,
        format!("_aggregates/stay-summary/topic={topic}/run-9.parquet")
    );
    let batch = read_parquet(&root.path().join(&key));
    assert_eq!(batch.num_rows(), rows);
    let total: i64 = int64(&batch, "count_all").iter().sum();
    assert_eq!(total, 300, "every exported booking is counted once");
}

#[test]
fn avro_of_two_schema_versions_lands_in_one_file_and_bad_frames_are_dead_lettered() {
    use apache_avro::Schema;
    use apache_avro::types::Value as Avro;
    use arrow_array::{Array, Int64Array};
    use sluice_host::codec::SchemaRegistry;
    use sluice_tests::schema_registry::{confluent_avro, start_with_subjects};

    let v1 = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}"#;
    let v2 = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"email","type":["null","string"],"default":null}]}"#;
    let topic = fresh_topic("users-avro");
    // Schema 3, a linked list, is recursive: legitimate, but a record of it
    // nested past the depth limit must be a dead letter, not a stack
    // overflow that aborts the export (as it was before the limit).
    let list = r#"{"type":"record","name":"Node","fields":[{"name":"value","type":"int"},{"name":"next","type":["null","Node"]}]}"#;
    let registry = start_with_subjects(
        vec![(1, v1.to_owned()), (2, v2.to_owned()), (3, list.to_owned())],
        vec![(format!("{topic}-value"), vec![1, 2])],
    );
    let (s1, s2) = (
        Schema::parse_str(v1).unwrap(),
        Schema::parse_str(v2).unwrap(),
    );
    let user1 = |id: i64| {
        Avro::Record(vec![
            ("id".into(), Avro::Long(id)),
            ("name".into(), Avro::String(format!("u{id}"))),
        ])
    };
    let user2 = |id: i64| {
        Avro::Record(vec![
            ("id".into(), Avro::Long(id)),
            ("name".into(), Avro::String(format!("u{id}"))),
            (
                "email".into(),
                Avro::Union(1, Box::new(Avro::String(format!("u{id}@x")))),
            ),
        ])
    };
    let mut values: Vec<Vec<u8>> = Vec::new();
    values.extend((0..3).map(|i| confluent_avro(1, &s1, user1(i))));
    values.extend((3..6).map(|i| confluent_avro(2, &s2, user2(i))));
    values.push(br#"{"plain":"json"}"#.to_vec()); // offset 6: no magic byte
    values.push(confluent_avro(1, &s1, user1(7))[..3].to_vec()); // offset 7: truncated
    values.push({
        let mut unknown = confluent_avro(1, &s1, user1(8));
        unknown[4] = 9; // offset 8: schema id 9, unknown to the registry
        unknown
    });
    values.push({
        // offset 9: a list of 100,000 nodes (each its value 1 and the
        // union's branch 1, the last branch 0), written by hand.
        let mut deep = vec![0, 0, 0, 0, 3];
        for node in 1..=100_000 {
            deep.extend([0x02, if node < 100_000 { 0x02 } else { 0x00 }]);
        }
        deep
    });

    let config = broker();
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values);

    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let mut options = ExportOptions::new("avro-run");
    options.registry = Some(std::sync::Arc::new(
        SchemaRegistry::new(&registry.url).unwrap(),
    ));
    let report = export_topic(
        &config,
        &plan(&topic, &fresh_topic("g"), serde_json::json!({})),
        &storage,
        &options,
        None,
        |_| {},
    )
    .unwrap();
    assert_eq!(
        (report.records, report.dead_lettered, report.files.len()),
        (10, 4, 1)
    );

    let batch = read_parquet(&root.path().join(&report.files[0].key));
    let values = batch.column_by_name("value").unwrap();
    let values = values.as_any().downcast_ref::<StringArray>().unwrap();
    let decoded: Vec<serde_json::Value> = (0..values.len())
        .map(|i| serde_json::from_str(values.value(i)).unwrap())
        .collect();
    assert_eq!(decoded[0], serde_json::json!({"id": 0, "name": "u0"}));
    assert_eq!(
        decoded[5],
        serde_json::json!({"id": 5, "name": "u5", "email": "u5@x"})
    );
    assert_eq!(decoded.len(), 6);
    // Typed columns merged from both versions of `<topic>-value`: one file.
    let ids = batch.column_by_name("id").unwrap();
    let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(ids.values().to_vec(), [0, 1, 2, 3, 4, 5]);
    let emails = batch.column_by_name("email").unwrap();
    let emails = emails.as_any().downcast_ref::<StringArray>().unwrap();
    assert!(emails.is_null(0), "version 1 rows have no email");
    assert_eq!(emails.value(5), "u5@x");
    let names = batch.column_by_name("name").unwrap();
    let names = names.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(names.value(0), "u0");

    let dead = std::fs::read_to_string(
        root.path().join(
            report
                .dead_letter_files()
                .next()
                .expect("a dead-letter file"),
        ),
    )
    .unwrap();
    let reasons: Vec<String> = dead
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(reasons[0].contains("magic byte is 123"), "{reasons:?}");
    assert!(reasons[1].contains("too short"), "{reasons:?}");
    assert!(
        reasons[2].contains("schema 9") && reasons[2].contains("404"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].contains("schema 3") && reasons[3].contains("nests more than 128 levels deep"),
        "{reasons:?}"
    );
    // The subject's version list and its two versions (which fill the
    // cache for ids 1 and 2), then schema 9 tried once, and schema 3.
    assert_eq!(registry.requests(), 5);
}
