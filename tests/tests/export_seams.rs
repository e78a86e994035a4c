//! The export where two paths, two outputs or two failures meet: a schema
//! registry that goes down mid-run (its outage is not the records' fault),
//! one topic written as files and as a table in the same run, an
//! aggregator that fails on a record, records a failed run stored before
//! its aggregate, a remote export's staging disk. After each, every record
//! is stored exactly once and nothing is given up that a later run could
//! have kept.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use sluice_host::codec::SchemaRegistry;
use sluice_host::config::{Connections, ExportFormat, TopicEntry};
use sluice_host::export::{ExportError, ExportOptions, RunSettings, export_topic, export_topics};
use sluice_host::kafka::ensure_topic;
use sluice_host::retry::Backoff;
use sluice_host::runtime::Limits;
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_host::transforms::TransformSource;
use sluice_tests::exports::{assert_exactly_once, set_group_offset, values};
use sluice_tests::schema_registry::{confluent_avro, start_with_subjects};
use sluice_tests::stored::{files_under, stored_offsets};
use sluice_tests::{broker, fresh_topic, plan, produce_to};

fn local(root: &Path) -> Storage {
    Storage::open(root.to_str().unwrap(), &AzureCredentials::default()).unwrap()
}

/// Retries that give up at once: the test decides when the registry is up.
const NO_WAIT: Backoff = Backoff {
    first: Duration::from_millis(1),
    max: Duration::from_millis(1),
    retries: 1,
};

const USER: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#;

/// `count` Avro records on partition 0, record `i` framed with schema id
/// `1 + i / per_id` (the same schema under several ids, as a registry
/// holds one per subject version), and a registry that serves them.
fn avro_topic(
    count: usize,
    per_id: usize,
) -> (String, sluice_tests::schema_registry::TestRegistry) {
    let topic = fresh_topic("seam-avro");
    let ids = (count.div_ceil(per_id)) as u32;
    let schemas = (1..=ids).map(|id| (id, USER.to_owned())).collect();
    let registry = start_with_subjects(schemas, vec![(format!("{topic}-value"), vec![1])]);
    let schema = Schema::parse_str(USER).unwrap();
    let frames: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let id = 1 + (i / per_id) as u32;
            confluent_avro(
                id,
                &schema,
                Avro::Record(vec![("id".into(), Avro::Long(i as i64))]),
            )
        })
        .collect();
    let config = broker();
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &frames);
    (topic, registry)
}

fn avro_options(run_id: &str, registry: &str) -> ExportOptions {
    let mut options = ExportOptions::new(run_id);
    options.registry = Some(Arc::new(
        SchemaRegistry::new(registry).unwrap().with_backoff(NO_WAIT),
    ));
    options.max_rows_per_file = 100;
    options.batch_size = 50;
    options
}

/// Promise: a schema registry outage never turns records into dead
/// letters and never commits past what is stored; once the registry is
/// back, the next run stores every record, once.
#[test]
fn a_registry_outage_mid_run_stops_the_run_and_the_next_run_stores_every_record_once() {
    let (topic, registry) = avro_topic(600, 100);
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let group = fresh_topic("g");
    // The subject (two requests) and schemas 2 and 3 are answered; the
    // registry is down when the run meets schema 4, at offset 300.
    registry.go_down_after(4);
    let error = export_topic(
        &broker(),
        &plan(&topic, &group, serde_json::json!({})),
        &storage,
        &avro_options("run-1", &registry.url),
        None,
        |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(&error, ExportError::SchemaRegistry(e) if e.is_unavailable()),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&registry.url) && message.contains("503"),
        "{message}"
    );
    let stored = stored_offsets(root.path(), true);
    assert_eq!(
        stored.keys().map(|(_, o)| *o).max(),
        Some(299),
        "the blocks before the outage are stored, nothing after"
    );
    assert!(
        files_under(root.path())
            .iter()
            .all(|f| !f.to_string_lossy().contains("_dead_letters")),
        "an outage is not the records' fault: no dead letters"
    );

    registry.come_back();
    let second = export_topic(
        &broker(),
        &plan(&topic, &group, serde_json::json!({})),
        &storage,
        &avro_options("run-2", &registry.url),
        None,
        |_| {},
    )
    .unwrap();
    assert_eq!(
        (second.records, second.dead_lettered),
        (300, 0),
        "the second run goes on after the stored files, nothing committed past them"
    );
    assert_exactly_once(&stored_offsets(root.path(), true), 600);
}

/// Promise: a subject the registry cannot give at the start of a run fails
/// the run; it never writes the run's files without their typed columns.
#[test]
fn a_subject_the_registry_cannot_give_at_the_start_fails_the_run_instead_of_dropping_columns() {
    let (topic, registry) = avro_topic(50, 100);
    let root = tempfile::tempdir().unwrap();
    registry.go_down_after(0);
    let error = export_topic(
        &broker(),
        &plan(&topic, &fresh_topic("g"), serde_json::json!({})),
        &local(root.path()),
        &avro_options("run-1", &registry.url),
        None,
        |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(&error, ExportError::SchemaRegistry(e) if e.is_unavailable()),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains(&format!("subject {topic}-value")),
        "{error}"
    );
    assert!(stored_offsets(root.path(), true).is_empty());
}

fn entry(topic: &str, group: &str, format: ExportFormat) -> TopicEntry {
    let mut value = serde_json::json!({"topic": topic, "group_id": group});
    value["format"] = serde_json::json!(format.name());
    serde_json::from_value(value).unwrap()
}

/// Promise: one topic listed twice, as files and as a Delta table (a move
/// from one to the other), is exported fully to both in the same run,
/// with both writers working at once.
#[test]
fn one_topic_as_files_and_as_a_table_in_one_run_both_hold_every_record_once() {
    let config = broker();
    let topic = fresh_topic("seam-both");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 20_000));
    let root = tempfile::tempdir().unwrap();
    let connections: Connections =
        serde_json::from_value(serde_json::json!({"bootstrap_servers": config.bootstrap_servers}))
            .unwrap();
    let settings = RunSettings {
        out: Some(root.path().to_string_lossy().into_owned()),
        // Many files each: the two entries' files are written and stored
        // while the other's are.
        max_rows_per_file: 1_000,
        ..RunSettings::default()
    };
    let entries = [
        entry(&topic, &fresh_topic("files"), ExportFormat::Parquet),
        entry(&topic, &fresh_topic("table"), ExportFormat::Delta),
    ];
    let run = export_topics(
        &entries,
        &connections,
        &settings,
        &TransformSource::folder(sluice_tests::runtime().clone(), sluice_tests::guests_dir()),
        &|_, _| {},
    )
    .unwrap();
    for (name, result) in &run.results {
        let report = result.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.records, 20_000, "{name}");
    }
    let files: BTreeMap<(i32, i64), usize> =
        stored_offsets(&root.path().join(format!("topic={topic}")), false);
    assert_exactly_once(&files, 20_000);
    let table = sluice_tests::delta::stored(&root.path().join(&topic));
    assert_exactly_once(&table, 20_000);
}

/// Promise: an aggregator failing on a record (a trap, a loop past its
/// deadline) loses only that record from the aggregate: it is kept in the
/// aggregate's dead letters with the reason, and the files and the rest of
/// the aggregate go on.
#[test]
fn an_aggregator_that_fails_on_records_leaves_them_out_and_the_export_goes_on() {
    let config = broker();
    let topic = fresh_topic("seam-agg");
    ensure_topic(&config, &topic, 1).unwrap();
    let mut records = values(0, 300);
    records[10] = r#"{"do":"trap"}"#.to_owned();
    records[150] = r#"{"do":"loop"}"#.to_owned();
    records[151] = r#"{"do":"trap"}"#.to_owned();
    produce_to(&config, &topic, 0, &records);
    let root = tempfile::tempdir().unwrap();
    let aggregator = sluice_tests::transform("misbehave-agg")
        .aggregator(
            Limits {
                deadline: Duration::from_millis(500),
                ..Limits::default()
            },
            Arc::default(),
        )
        .unwrap();
    let mut options = ExportOptions::new("run-agg");
    options.batch_size = 100;
    let report = export_topic(
        &config,
        &plan(&topic, &fresh_topic("g"), serde_json::json!({})),
        &local(root.path()),
        &options,
        Some(aggregator),
        |_| {},
    )
    .unwrap();
    assert_eq!(
        (report.records, report.dead_lettered),
        (300, 0),
        "the files keep every record"
    );
    assert_exactly_once(&stored_offsets(root.path(), false), 300);
    let aggregate = report.aggregate.clone().unwrap();
    assert_eq!(aggregate.refused, 3);
    let counted = aggregate_offsets(&root.path().join(&aggregate.key));
    let expected: Vec<i64> = (0..300).filter(|o| ![10, 150, 151].contains(o)).collect();
    assert_eq!(counted, expected, "every other record once, in order");
    let dead = std::fs::read_to_string(root.path().join(format!(
        "_aggregates/misbehave-agg/topic={topic}/run-agg.dead_letters.jsonl"
    )))
    .unwrap();
    let dead: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let offsets: Vec<i64> = dead.iter().map(|d| d["offset"].as_i64().unwrap()).collect();
    assert_eq!(offsets, [10, 150, 151]);
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert!(
        reasons[0].contains("asked to trap at offset 10"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("deadline"), "{reasons:?}");
}

/// The offsets the misbehave-agg result counted.
fn aggregate_offsets(path: &Path) -> Vec<i64> {
    use arrow_array::{Array, ListArray};
    let batch = sluice_tests::read_parquet(path);
    let offsets = batch.column_by_name("offsets").expect("an offsets column");
    let list = offsets
        .as_any()
        .downcast_ref::<ListArray>()
        .expect("a list");
    let values = list.value(0);
    if values.is_empty() {
        // `[]` is read back as a list of nulls: nothing was counted.
        return Vec::new();
    }
    let values = values
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .expect("int64 offsets");
    values.values().to_vec()
}

/// Every offset the stored misbehave-agg results of `topic` counted.
fn all_aggregated(root: &Path, topic: &str) -> Vec<i64> {
    let mut all = Vec::new();
    for path in files_under(&root.join(format!("_aggregates/misbehave-agg/topic={topic}"))) {
        if path.extension().is_some_and(|e| e == "parquet") {
            all.extend(aggregate_offsets(&path));
        }
    }
    all.sort_unstable();
    all
}

/// Promise: records a failed run stored before it stored its aggregate
/// reach the next run's aggregate; records a run aggregated before it
/// failed to commit its offsets do not reach a second one.
#[test]
fn every_stored_record_reaches_exactly_one_aggregate_across_failed_runs() {
    let (topic, registry) = avro_topic(600, 100);
    let root = tempfile::tempdir().unwrap();
    let storage = local(root.path());
    let group = fresh_topic("g");
    let aggregator = || {
        sluice_tests::transform("misbehave-agg")
            .aggregator(Limits::default(), Arc::default())
            .unwrap()
    };
    let run = |run_id: &str| {
        export_topic(
            &broker(),
            &plan(&topic, &group, serde_json::json!({})),
            &storage,
            &avro_options(run_id, &registry.url),
            Some(aggregator()),
            |_| {},
        )
    };
    // Run 1 stores 0-299 and fails before its aggregate.
    registry.go_down_after(4);
    run("run-1").unwrap_err();
    assert!(all_aggregated(root.path(), &topic).is_empty());
    registry.come_back();
    // Run 2 writes 300-599 and aggregates 0-599.
    let second = run("run-2").unwrap();
    assert_eq!(second.records, 300);
    assert_eq!(
        all_aggregated(root.path(), &topic),
        (0..600).collect::<Vec<_>>()
    );
    // As if run 2 had stopped after its aggregate and before its commit.
    set_group_offset(&broker(), &topic, &group, 0);
    let third = run("run-3").unwrap();
    assert_eq!(third.records, 0);
    assert_eq!(
        all_aggregated(root.path(), &topic),
        (0..600).collect::<Vec<_>>(),
        "nothing aggregated twice"
    );
}

/// Promise: a remote export's open files take at most the staging budget
/// (plus one batch) on the local disk; past it the largest are stored
/// early, and every record is still stored once.
#[test]
fn a_remote_exports_staging_disk_stays_within_its_budget() {
    let config = broker();
    let topic = fresh_topic("seam-staging");
    ensure_topic(&config, &topic, 4).unwrap();
    // Values that do not compress to nothing: ~100 bytes of digits each.
    let value = |i: usize| {
        format!(
            r#"{{"i":{i},"pad":"{}"}}"#,
            (i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .to_string()
                .repeat(5)
        )
    };
    for partition in 0..4 {
        let records: Vec<String> = (0..20_000).map(value).collect();
        produce_to(&config, &topic, partition, &records);
    }
    let url = sluice_tests::azurite_url("staging", "lake");
    let storage = Storage::open(&url, &sluice_tests::azurite::credentials()).unwrap();
    // A quarter of what one partition's file takes: each partition's file
    // is stored in parts as the read goes.
    let budget: u64 = 64 << 10;
    let mut options = ExportOptions::new("run-staging");
    options.staging_budget = budget;
    options.batch_size = 1_000;
    // Row groups go to disk soon, so staging grows with the read.
    options.memory_budget = 16 << 10;
    let report = export_topic(
        &config,
        &plan(&topic, &fresh_topic("g"), serde_json::json!({})),
        &storage,
        &options,
        None,
        |_| {},
    )
    .unwrap();
    assert_eq!(report.records, 80_000);
    assert!(
        // Checked after each step's records: one step over at most.
        report.staging_peak_bytes <= budget + (128 << 10),
        "staging held {} bytes, budget {budget}",
        report.staging_peak_bytes
    );
    assert!(
        report.files.len() >= 4 * 3,
        "files were stored early: {}",
        report.files.len()
    );
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for file in &report.files {
        for offset in file.first..=file.last {
            *seen.entry((file.partition, offset)).or_insert(0) += 1;
        }
    }
    assert!(seen.values().all(|n| *n == 1), "file ranges overlap");
    assert_eq!(seen.len(), 80_000, "file ranges cover every offset");
    assert_eq!(report.files.iter().map(|f| f.rows).sum::<u64>(), 80_000);
}
