//! Topics exported as Delta tables ("format": "delta") against the real
//! broker, read back by the table's log replayed here and by the
//! `deltalake` package and pyarrow: the layout and actions, exactly once
//! through the `txn` versions (a crash between the table's commit and the
//! group's, a group offset moved, a renamed group), re-exports replacing
//! files in one commit, Avro versions adding columns, commits mid-run,
//! checkpoints (ours and one the deltalake package wrote), a table the
//! deltalake package compacted, Azurite.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use sluice_host::config::ExportFormat;
use sluice_host::export::{ExportOptions, export_topic};
use sluice_host::kafka::ensure_topic;
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_tests::delta::{commits, live_adds, read_with_deltalake, stored, txns};
use sluice_tests::exports::{assert_exactly_once, export, set_group_offset, values};
use sluice_tests::{broker, fresh_topic, plan, produce_to};

fn delta(run_id: &str) -> ExportOptions {
    let mut options = ExportOptions::new(run_id);
    options.format = ExportFormat::Delta;
    options
}

fn local(root: &Path) -> Storage {
    Storage::open(root.to_str().unwrap(), &AzureCredentials::default()).unwrap()
}

/// The deltalake package's view of a local table.
fn deltalake(table: &Path, extra: Value) -> Option<Value> {
    let mut request = json!({"uri": table.to_str().unwrap()});
    if let (Some(request), Some(extra)) = (request.as_object_mut(), extra.as_object()) {
        request.extend(extra.clone());
    }
    read_with_deltalake(&request)
}

/// What the deltalake package read, checked against what the table holds
/// here: version, row count, each (partition, offset) once.
fn assert_read_alike(read: &Value, table: &Path, version: u64) {
    assert_eq!(read["version"], version, "{read}");
    let held = stored(table);
    let rows: usize = live_adds(table)
        .values()
        .map(|add| {
            let stats: Value = serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
            stats["numRecords"].as_u64().unwrap() as usize
        })
        .sum();
    assert_eq!(read["rows"], rows, "{read}");
    assert_eq!(
        read["pyarrow_rows"], rows,
        "pyarrow reads the data files alone: {read}"
    );
    let offsets = read["offsets"].as_object().unwrap();
    assert_eq!(offsets.len(), rows, "no row twice: {read}");
    for (at, count) in offsets {
        let (p, o) = at.split_once(':').unwrap();
        let at = (p.parse::<i32>().unwrap(), o.parse::<i64>().unwrap());
        assert_eq!(count, 1, "{at:?}");
        assert_eq!(held.get(&at), Some(&1), "{at:?} is in the table here too");
    }
}

#[test]
fn a_topic_exported_as_delta_is_a_table_the_deltalake_package_reads() {
    let config = broker();
    let topic = fresh_topic("delta.orders");
    ensure_topic(&config, &topic, 3).unwrap();
    let mut p0 = values(0, 10);
    p0[4] = "not json".into();
    produce_to(&config, &topic, 0, &p0);
    produce_to(&config, &topic, 1, &values(0, 3));
    let (root, group) = (tempfile::tempdir().unwrap(), fresh_topic("g"));
    let storage = local(root.path());
    let report = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-1"),
    );
    assert_eq!((report.records, report.dead_lettered), (13, 1));
    assert_eq!(report.delta.as_ref().unwrap().version, Some(0));

    let table = root.path().join(&topic);
    let mut names: Vec<String> = walk(&table)
        .iter()
        .map(|p| {
            p.strip_prefix(&table)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_dead_letters/part-0-0-9-run-1.jsonl".to_owned(),
            "_delta_log/00000000000000000000.json".to_owned(),
            "part-0-0-9-run-1.zstd.parquet".to_owned(),
            "part-1-0-2-run-1.zstd.parquet".to_owned(),
        ]
    );
    assert!(
        names.iter().all(|n| !n.contains('+')),
        "Hadoop reads + as a space"
    );

    let log = commits(&table);
    let kinds: Vec<&str> = log[0]
        .iter()
        .map(|a| a.as_object().unwrap().keys().next().unwrap().as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "commitInfo",
            "protocol",
            "metaData",
            "txn",
            "txn",
            "add",
            "add"
        ]
    );
    assert_eq!(
        log[0][1]["protocol"],
        json!({"minReaderVersion": 1, "minWriterVersion": 2})
    );
    let metadata = &log[0][2]["metaData"];
    assert_eq!(metadata["format"]["provider"], "parquet");
    assert_eq!(metadata["partitionColumns"], json!([]));
    assert_eq!(
        txns(&table),
        BTreeMap::from([(format!("{group}-0"), 9), (format!("{group}-1"), 2)])
    );
    let add = &log[0][5]["add"];
    assert_eq!(add["path"], "part-0-0-9-run-1.zstd.parquet");
    assert_eq!(add["partitionValues"], json!({}));
    assert_eq!(add["dataChange"], true);
    assert_eq!(
        add["tags"]["sluice.deadLetters"],
        "_dead_letters/part-0-0-9-run-1.jsonl"
    );
    let stats: Value = serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
    assert_eq!(stats["numRecords"], 9);
    assert_eq!(
        (
            &stats["minValues"]["kafka_offset"],
            &stats["maxValues"]["kafka_offset"]
        ),
        (&json!(0), &json!(9))
    );
    assert!(
        stats["minValues"]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{stats}"
    );
    let held = stored(&table);
    assert_eq!(held.len(), 13, "12 rows and the dead letter, each once");
    assert!(held.values().all(|n| *n == 1));

    if let Some(read) = deltalake(
        &table,
        json!({"app_ids": [format!("{group}-0"), format!("{group}-1")], "where": "kafka_offset >= 5"}),
    ) {
        assert_read_alike(&read, &table, 0);
        assert_eq!(read["protocol"], json!([1, 2]));
        assert_eq!(read["txn"][format!("{group}-0")], 9);
        assert_eq!(read["txn"][format!("{group}-1")], 2);
        assert_eq!(read["timestamp_type"], "timestamp[us, tz=UTC]");
        assert_eq!(read["where_count"], 5, "offsets 5-9 of partition 0: {read}");
        let fields: Vec<(String, Value)> = read["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["name"].as_str().unwrap().to_owned(), f["type"].clone()))
            .collect();
        let expected = [
            ("topic", json!("string")),
            ("partition", json!("integer")),
            ("offset", json!("long")),
            ("kafka_offset", json!("long")),
            ("timestamp", json!("timestamp")),
            ("key", json!("binary")),
            ("value", json!("string")),
        ];
        for (name, data_type) in expected {
            assert!(
                fields.iter().any(|(n, t)| n == name && *t == data_type),
                "{name} {data_type} in {fields:?}"
            );
        }
        let in_kafka = sluice_tests::read_all(&config, &topic);
        let first = in_kafka
            .iter()
            .find(|r| (r.partition, r.offset) == (0, 0))
            .unwrap();
        let first_read = read["first_timestamp_ms"].as_i64().unwrap();
        assert!(
            in_kafka.iter().any(|r| r.timestamp == Some(first_read)),
            "timestamps keep their instant ({first_read} ms, Kafka has {:?})",
            first.timestamp
        );
    }

    // Nothing new: no commit. Then only what came since, as version 1.
    let again = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-2"),
    );
    assert_eq!((again.records, again.delta.unwrap().version), (0, Some(0)));
    produce_to(&config, &topic, 1, &values(3, 5));
    let third = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-3"),
    );
    assert_eq!((third.records, third.delta.unwrap().version), (2, Some(1)));
    assert_eq!(txns(&table)[&format!("{group}-1")], 4);
    if let Some(read) = deltalake(&table, json!({})) {
        assert_read_alike(&read, &table, 1);
    }
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_crash_after_the_table_commit_and_before_the_group_commit_stores_nothing_twice() {
    let config = broker();
    let topic = fresh_topic("delta-crash");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 1000));
    let (root, group) = (tempfile::tempdir().unwrap(), fresh_topic("g"));
    let storage = local(root.path());
    let first = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-a"),
    );
    assert_eq!(first.records, 1000);
    // The table committed, the group did not (what a crash in between
    // leaves), and the topic grew.
    set_group_offset(&config, &topic, &group, 0);
    produce_to(&config, &topic, 0, &values(1000, 1500));
    let second = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-b"),
    );
    assert_eq!(second.records, 500, "resumed after the table's txn version");
    let table = root.path().join(&topic);
    assert_exactly_once(&stored(&table), 1500);
    assert_eq!(txns(&table)[&format!("{group}-0")], 1499);
    if let Some(read) = deltalake(&table, json!({"app_ids": [format!("{group}-0")]})) {
        assert_read_alike(&read, &table, 1);
        assert_eq!(read["txn"][format!("{group}-0")], 1499);
    }
}

#[test]
fn the_table_not_the_group_decides_where_a_run_resumes() {
    let config = broker();
    let topic = fresh_topic("delta-decides");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 100));
    let (root, group) = (tempfile::tempdir().unwrap(), fresh_topic("g"));
    let storage = local(root.path());
    export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-a"),
    );
    // The group moved past what the table holds: the table still gets
    // every record, once.
    produce_to(&config, &topic, 0, &values(100, 200));
    set_group_offset(&config, &topic, &group, 150);
    let second = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-b"),
    );
    assert_eq!(second.records, 100, "from offset 100, where the table ends");
    let table = root.path().join(&topic);
    assert_exactly_once(&stored(&table), 200);
    // A renamed group has no txn of its own: it goes on after the table's
    // files rather than writing them again.
    produce_to(&config, &topic, 0, &values(200, 230));
    let renamed = fresh_topic("renamed");
    let third = export(
        &config,
        &topic,
        &renamed,
        json!({}),
        &storage,
        &delta("run-c"),
    );
    assert_eq!(third.records, 30);
    assert_exactly_once(&stored(&table), 230);
    assert_eq!(txns(&table)[&format!("{renamed}-0")], 229);
}

#[test]
fn a_re_export_replaces_the_files_it_covers_in_one_commit() {
    let config = broker();
    let topic = fresh_topic("delta-reset");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 1000));
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let reset = json!({"reset_offsets": true});
    let group = fresh_topic("g");
    export(
        &config,
        &topic,
        &group,
        reset.clone(),
        &storage,
        &delta("run-a"),
    );
    produce_to(&config, &topic, 0, &values(1000, 1500));
    let again = export(&config, &topic, &group, reset, &storage, &delta("run-b"));
    assert_eq!((again.records, again.superseded), (1500, 1));
    let table = root.path().join(&topic);
    let log = commits(&table);
    let last = &log[1];
    assert!(
        last.iter()
            .any(|a| a["remove"]["path"] == "part-0-0-999-run-a.zstd.parquet")
    );
    assert!(
        last.iter()
            .any(|a| a["add"]["path"] == "part-0-0-1499-run-b.zstd.parquet")
    );
    assert_eq!(last[0]["commitInfo"]["isBlindAppend"], false);
    assert!(
        table.join("part-0-0-999-run-a.zstd.parquet").exists(),
        "a removed file stays for time travel until VACUUM"
    );
    assert_exactly_once(&stored(&table), 1500);
    if let Some(read) = deltalake(&table, json!({"history": true})) {
        assert_read_alike(&read, &table, 1);
        assert_eq!(read["operations"], json!(["WRITE", "WRITE"]));
    }
    // The group goes on from there.
    produce_to(&config, &topic, 0, &values(1500, 1510));
    let rest = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-c"),
    );
    assert_eq!(rest.records, 10);
    assert_exactly_once(&stored(&table), 1510);
}

#[test]
fn a_block_of_offsets_filled_mid_run_is_committed_at_once() {
    let config = broker();
    let topic = fresh_topic("delta-blocks");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 25));
    let root = tempfile::tempdir().unwrap();
    let mut options = delta("run");
    options.max_rows_per_file = 10;
    options.batch_size = 4;
    let group = fresh_topic("g");
    let report = export(
        &config,
        &topic,
        &group,
        json!({}),
        &local(root.path()),
        &options,
    );
    assert_eq!(report.delta.unwrap().commits, 3);
    let table = root.path().join(&topic);
    let versions: Vec<(Vec<String>, i64)> = commits(&table)
        .iter()
        .map(|actions| {
            let paths = actions
                .iter()
                .filter_map(|a| a["add"]["path"].as_str().map(str::to_owned))
                .collect();
            let txn = actions
                .iter()
                .find_map(|a| a["txn"]["version"].as_i64())
                .unwrap();
            (paths, txn)
        })
        .collect();
    assert_eq!(
        versions,
        [
            (vec!["part-0-0-9-run.zstd.parquet".to_owned()], 9),
            (vec!["part-0-10-19-run.zstd.parquet".to_owned()], 19),
            (vec!["part-0-20-24-run.zstd.parquet".to_owned()], 24),
        ]
    );
    assert_exactly_once(&stored(&table), 25);
}

#[test]
fn checkpoints_every_n_commits_and_one_the_deltalake_package_wrote_are_read() {
    let config = broker();
    let topic = fresh_topic("delta-checkpoint");
    ensure_topic(&config, &topic, 1).unwrap();
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let group = fresh_topic("g");
    let mut options = delta("run");
    options.checkpoint_interval = 2;
    let table = root.path().join(&topic);
    for round in 0..5 {
        produce_to(&config, &topic, 0, &values(round * 10, round * 10 + 10));
        options.run_id = format!("run-{round}");
        let report = export(&config, &topic, &group, json!({}), &storage, &options);
        assert_eq!(report.records, 10);
    }
    let log = table.join("_delta_log");
    for version in [2, 4] {
        assert!(
            log.join(format!("{version:020}.checkpoint.parquet"))
                .exists(),
            "{version}"
        );
    }
    let pointer: Value =
        serde_json::from_str(&std::fs::read_to_string(log.join("_last_checkpoint")).unwrap())
            .unwrap();
    assert_eq!(
        (
            pointer["version"].as_u64(),
            pointer["numOfAddFiles"].as_u64()
        ),
        (Some(4), Some(5))
    );
    // The commits before the checkpoint, gone, cannot be what the next run
    // reads: it starts from the checkpoint.
    for version in 0..4 {
        std::fs::remove_file(log.join(format!("{version:020}.json"))).unwrap();
    }
    produce_to(&config, &topic, 0, &values(50, 60));
    options.run_id = "run-5".into();
    let report = export(&config, &topic, &group, json!({}), &storage, &options);
    assert_eq!(
        (report.records, report.delta.unwrap().version),
        (10, Some(5))
    );

    if let Some(read) = deltalake(&table, json!({"app_ids": [format!("{group}-0")]})) {
        assert_eq!(
            (read["version"].as_u64(), read["rows"].as_u64()),
            (Some(5), Some(60))
        );
        assert_eq!(read["txn"][format!("{group}-0")], 59);
        assert_eq!(read["pyarrow_rows"], 60);
        // The deltalake package checkpoints version 5 itself; the next run
        // reads that checkpoint and goes on.
        deltalake(&table, json!({"checkpoint": true})).unwrap();
        assert!(log.join(format!("{:020}.checkpoint.parquet", 5)).exists());
        std::fs::remove_file(log.join(format!("{:020}.json", 4))).unwrap();
        std::fs::remove_file(log.join(format!("{:020}.json", 5))).unwrap();
        produce_to(&config, &topic, 0, &values(60, 70));
        options.run_id = "run-6".into();
        let report = export(&config, &topic, &group, json!({}), &storage, &options);
        assert_eq!(
            (report.records, report.delta.unwrap().version),
            (10, Some(6))
        );
        let read = deltalake(&table, json!({"app_ids": [format!("{group}-0")]})).unwrap();
        assert_eq!(
            (read["version"].as_u64(), read["rows"].as_u64()),
            (Some(6), Some(70))
        );
        assert_eq!(read["txn"][format!("{group}-0")], 69);
        let offsets: Vec<&String> = read["offsets"].as_object().unwrap().keys().collect();
        assert_eq!(offsets.len(), 70);
    }
}

#[test]
fn a_table_compacted_by_the_deltalake_package_goes_on_from_its_txn_versions() {
    let config = broker();
    let topic = fresh_topic("delta-optimize");
    ensure_topic(&config, &topic, 1).unwrap();
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let group = fresh_topic("g");
    let table = root.path().join(&topic);
    for round in 0..3 {
        produce_to(&config, &topic, 0, &values(round * 10, round * 10 + 10));
        export(
            &config,
            &topic,
            &group,
            json!({}),
            &storage,
            &delta(&format!("run-{round}")),
        );
    }
    // OPTIMIZE: another writer's commit removes Sluice's three files and
    // adds one of its own, without Sluice's tags.
    let Some(compacted) = deltalake(&table, json!({"optimize": true, "history": true})) else {
        return;
    };
    assert_eq!(compacted["version"], 3, "{compacted}");
    assert_eq!(compacted["files"].as_array().unwrap().len(), 1);
    produce_to(&config, &topic, 0, &values(30, 40));
    let report = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-3"),
    );
    assert_eq!(
        (report.records, report.delta.unwrap().version),
        (10, Some(4))
    );
    let read = deltalake(&table, json!({"app_ids": [format!("{group}-0")]})).unwrap();
    assert_eq!(
        (read["rows"].as_u64(), read["pyarrow_rows"].as_u64()),
        (Some(40), Some(40))
    );
    assert_eq!(
        read["offsets"].as_object().unwrap().len(),
        40,
        "each row once"
    );
    assert_eq!(read["txn"][format!("{group}-0")], 39);
    // A re-export cannot tell which of the compacted file's rows it would
    // replace: refused, and nothing committed.
    let error = export_topic(
        &config,
        &plan(&topic, &fresh_topic("g"), json!({"reset_offsets": true})),
        &storage,
        &delta("run-4"),
        None,
        |_| {},
    )
    .unwrap_err();
    assert!(error.to_string().contains("did not write"), "{error}");
    assert_eq!(commits(&table).len(), 5);
}

#[test]
fn avro_versions_merge_and_a_new_field_arrives_as_a_nullable_column() {
    use apache_avro::Schema;
    use apache_avro::types::Value as Avro;
    use sluice_host::kafka::{ProduceRecord, Producer};
    use sluice_tests::schema_registry::{confluent_avro, start_with_subjects};

    let v1 = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}"#;
    let v2 = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"email","type":["null","string"],"default":null}]}"#;
    let (s1, s2) = (
        Schema::parse_str(v1).unwrap(),
        Schema::parse_str(v2).unwrap(),
    );
    let user1 = |id: i64| {
        confluent_avro(
            1,
            &s1,
            Avro::Record(vec![
                ("id".into(), Avro::Long(id)),
                ("name".into(), Avro::String(format!("u{id}"))),
            ]),
        )
    };
    let user2 = |id: i64| {
        confluent_avro(
            2,
            &s2,
            Avro::Record(vec![
                ("id".into(), Avro::Long(id)),
                ("name".into(), Avro::String(format!("u{id}"))),
                (
                    "email".into(),
                    Avro::Union(1, Box::new(Avro::String(format!("u{id}@x")))),
                ),
            ]),
        )
    };
    let config = broker();
    let topic = fresh_topic("delta-avro");
    ensure_topic(&config, &topic, 1).unwrap();
    let send = |values: Vec<Vec<u8>>| {
        let records: Vec<ProduceRecord> = values
            .into_iter()
            .map(|v| ProduceRecord {
                timestamp: None,
                topic: topic.clone(),
                partition: Some(0),
                key: None,
                value: Some(v),
                headers: Vec::new(),
            })
            .collect();
        Producer::new(&config).unwrap().send_all(&records).unwrap();
    };
    let options = |registry: &sluice_tests::schema_registry::TestRegistry, run: &str| {
        let mut options = delta(run);
        options.registry = Some(std::sync::Arc::new(
            sluice_host::codec::SchemaRegistry::new(&registry.url).unwrap(),
        ));
        options
    };
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let group = fresh_topic("g");
    // The subject has version 1 only.
    let first = start_with_subjects(
        vec![(1, v1.to_owned())],
        vec![(format!("{topic}-value"), vec![1])],
    );
    send((0..3).map(user1).collect());
    export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &options(&first, "run-1"),
    );
    // Version 2 adds `email`: the next commit adds the column.
    let second = start_with_subjects(
        vec![(1, v1.to_owned()), (2, v2.to_owned())],
        vec![(format!("{topic}-value"), vec![1, 2])],
    );
    send(vec![user1(3), user2(4), user2(5)]);
    let report = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &options(&second, "run-2"),
    );
    assert_eq!((report.records, report.dead_lettered), (3, 0));

    let table = root.path().join(&topic);
    let log = commits(&table);
    let columns = |actions: &[Value]| -> Vec<(String, Value, bool)> {
        let metadata = actions
            .iter()
            .find_map(|a| a.get("metaData"))
            .expect("a metaData");
        let schema: Value =
            serde_json::from_str(metadata["schemaString"].as_str().unwrap()).unwrap();
        schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .skip(8)
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_owned(),
                    f["type"].clone(),
                    f["nullable"] == true,
                )
            })
            .collect()
    };
    assert_eq!(
        columns(&log[0]),
        [
            ("id".into(), json!("long"), true),
            ("name".into(), json!("string"), true)
        ]
    );
    assert_eq!(
        columns(&log[1]),
        [
            ("id".into(), json!("long"), true),
            ("name".into(), json!("string"), true),
            ("email".into(), json!("string"), true),
        ]
    );
    let id = |a: &Value| a["metaData"]["id"].clone();
    assert_eq!(
        log[0].iter().find(|a| a.get("metaData").is_some()).map(id),
        log[1].iter().find(|a| a.get("metaData").is_some()).map(id),
        "the same table, its schema updated"
    );
    assert_exactly_once(&stored(&table), 6);
    if let Some(read) = deltalake(&table, json!({"where": "email IS NULL"})) {
        assert_read_alike(&read, &table, 1);
        let names: Vec<&str> = read["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names[8..], ["id", "name", "email"]);
        assert_eq!(
            read["where_count"], 4,
            "the three of run 1 and the version 1 record of run 2"
        );
    }
}

#[test]
fn an_export_to_azurite_is_a_table_the_deltalake_package_reads() {
    use sluice_tests::azurite;
    let config = broker();
    let topic = fresh_topic("delta-azure");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 7));
    let url = sluice_tests::azurite_url("delta", "landing");
    let storage = Storage::open(&url, &azurite::credentials()).unwrap();
    let group = fresh_topic("g");
    let first = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-1"),
    );
    assert_eq!(first.delta.unwrap().version, Some(0));
    produce_to(&config, &topic, 0, &values(7, 12));
    // The same group again, after the group commit was lost: the table
    // decides, on Azure too.
    set_group_offset(&config, &topic, &group, 0);
    // A checkpoint at every version: the next run reads it from Azure.
    let mut options = delta("run-2");
    options.checkpoint_interval = 1;
    let second = export(&config, &topic, &group, json!({}), &storage, &options);
    let report = second.delta.unwrap();
    assert_eq!(
        (second.records, report.version, report.checkpoints),
        (5, Some(1), 1)
    );
    produce_to(&config, &topic, 0, &values(12, 15));
    options.run_id = "run-3".into();
    let third = export(&config, &topic, &group, json!({}), &storage, &options);
    assert_eq!((third.records, third.delta.unwrap().version), (3, Some(2)));
    let pointer = storage
        .get_if_exists(&format!("{topic}/_delta_log/_last_checkpoint"))
        .unwrap()
        .unwrap();
    let pointer: Value = serde_json::from_slice(&pointer).unwrap();
    assert_eq!(pointer["version"], 2);
    // Version 1 exists: a create-only put of it is refused.
    let key = format!("{topic}/_delta_log/00000000000000000001.json");
    assert!(
        !storage
            .put_if_absent(&key, bytes::Bytes::from_static(b"{}\n"))
            .unwrap()
    );
    let log = storage.get_if_exists(&key).unwrap().unwrap();
    assert!(
        std::str::from_utf8(&log)
            .unwrap()
            .contains("\"commitInfo\"")
    );
    let (container, _) = url["abfss://".len()..].split_once('@').unwrap();

    let endpoint = azurite::credentials().endpoint.unwrap();
    let authority = endpoint
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let request = json!({
        "uri": format!("az://{container}/landing/{topic}"),
        "storage_options": {
            "account_name": azurite::ACCOUNT,
            "account_key": azurite::KEY,
            "endpoint": endpoint,
            "allow_http": "true",
        },
        "azure": {"account": azurite::ACCOUNT, "key": azurite::KEY, "authority": authority},
        "app_ids": [format!("{group}-0")],
    });
    if let Some(read) = read_with_deltalake(&request) {
        assert_eq!(
            (read["version"].as_u64(), read["rows"].as_u64()),
            (Some(2), Some(15))
        );
        assert_eq!(read["pyarrow_rows"], 15);
        assert_eq!(read["txn"][format!("{group}-0")], 14);
        assert_eq!(read["offsets"].as_object().unwrap().len(), 15);
    }
}
