//! A lake people query by time, tried where it breaks: records across
//! several hours exported in many small runs, then compacted, read back by
//! DuckDB once each, with a filter on the time folders reading only their
//! files; completeness markers appearing exactly when every partition has
//! passed an hour, and never rewritten; records of a complete hour placed
//! by each late-data policy.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use sluice_host::config::{LateData, PartitionBy};
use sluice_host::export::{ExportOptions, TimeLayout, TopicReport};
use sluice_host::kafka::{KafkaConfig, ensure_topic};
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_tests::exports::{export, values};
use sluice_tests::lake::{at_minute, duckdb, files_by_folder, footer, markers};
use sluice_tests::stored::{not_each_once, stored_offsets};
use sluice_tests::{broker, fresh_topic, produce_stamped};

fn local(root: &Path) -> Storage {
    Storage::open(root.to_str().unwrap(), &AzureCredentials::default()).unwrap()
}

fn hourly(run_id: &str, late: LateData, compact: bool) -> ExportOptions {
    let mut options = ExportOptions::new(run_id);
    options.time = Some(TimeLayout {
        by: PartitionBy::Hour,
        field: None,
        late,
    });
    options.compact = compact;
    options
}

/// `hour=HH` of `2026-12-05`.
fn folder(hour: u32) -> String {
    format!("dt=2026-12-05/hour={hour:02}")
}

/// Each (partition, offset) of partitions `0..partitions`, `0..count`,
/// stored exactly once under `root`, data and dead letters together.
fn assert_each_once(root: &Path, partitions: i32, count: i64) {
    let in_topic: Vec<(i32, i64)> = (0..partitions)
        .flat_map(|partition| (0..count).map(move |offset| (partition, offset)))
        .collect();
    if let Some(wrong) = not_each_once(&stored_offsets(root, true), &in_topic) {
        panic!("{wrong}");
    }
}

/// Makes `topic` of two partitions, each with a record every minute from
/// 10:00 (partition 1 from 10:00:30) to 13:59: hours 10 to 13. How many
/// records a partition.
fn four_hours(config: &KafkaConfig, topic: &str) -> usize {
    ensure_topic(config, topic, 2).unwrap();
    let count = 240;
    for partition in 0..2 {
        produce_stamped(config, topic, partition, &values(0, count), |i| {
            Some(at_minute(i as i64) + i64::from(partition) * 30_000)
        });
    }
    count
}

#[test]
fn hours_exported_in_many_small_runs_are_compacted_and_read_once_with_pruning() {
    let config = broker();
    let topic = fresh_topic("lake-hours");
    let count = four_hours(&config, &topic);
    let (root, group) = (tempfile::tempdir().unwrap(), fresh_topic("g"));
    let storage = local(root.path());
    let small = json!({"num_messages": 20});
    let mut runs = 0;
    loop {
        runs += 1;
        let options = hourly(&format!("run-{runs:03}"), LateData::Strict, false);
        let report = export(&config, &topic, &group, small.clone(), &storage, &options);
        if report.records == 0 {
            break;
        }
    }
    assert_eq!(runs, 13, "12 runs of 20 records a partition, then none");
    let prefix = format!("topic={topic}");
    let before = files_by_folder(root.path(), &prefix);
    for hour in 10..14 {
        // 60 records a partition an hour, 20 a run: 3 or 4 files each
        // (a run whose records cross the hour ends its unit there).
        let files = before.get(&folder(hour)).map_or(0, Vec::len);
        assert!((6..=8).contains(&files), "hour {hour}: {files} files");
    }
    assert_each_once(root.path(), 2, count as i64);
    // Both partitions caught up at 13:59: hours 10 to 12 are complete.
    assert_eq!(
        markers(root.path(), &topic).keys().collect::<Vec<_>>(),
        [&folder(10), &folder(11), &folder(12)]
    );

    let report = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &hourly("run-compact", LateData::Strict, true),
    );
    let compaction = report.time.as_ref().unwrap().compaction.clone();
    let after = files_by_folder(root.path(), &prefix);
    for hour in 10..13 {
        assert_eq!(
            after[&folder(hour)].len(),
            2,
            "hour {hour}: one file a partition: {:?}",
            after[&folder(hour)]
        );
    }
    assert_eq!(
        after[&folder(13)].len(),
        before[&folder(13)].len(),
        "hour 13 is not complete: left as it is"
    );
    let merged: usize = (10..13).map(|h| before[&folder(h)].len()).sum();
    assert_eq!((compaction.files_in, compaction.files_out), (merged, 6));
    assert_each_once(root.path(), 2, count as i64);
    for file in &after[&folder(11)] {
        let meta = footer(file);
        assert_eq!(meta.get("sluice.bucket"), Some(&folder(11)), "{meta:?}");
        assert!(meta.contains_key("sluice.compacted_from"), "{meta:?}");
    }

    let glob = root.path().join(format!("{prefix}/**/*.parquet"));
    let filter = "dt = '2026-12-05' AND hour = 11";
    if let Some(read) = duckdb(&glob, Some(filter), 0) {
        assert_eq!(read["rows"], 2 * count, "{read}");
        assert_eq!(read["pairs"], 2 * count, "every record once: {read}");
        assert_eq!(read["where_count"], 120, "{read}");
        let total: usize = after.values().map(Vec::len).sum();
        assert_eq!(
            read["scanning"],
            json!([2, total]),
            "only hour 11's files are scanned: {read}"
        );
        assert_eq!(read["files_read"], 2, "{read}");
    }
}

/// When each partition's last exported record is: the test's own
/// reckoning of completeness, to check the markers against.
fn complete_through(last: &[Option<i64>], caught_up: &[bool]) -> Option<i64> {
    let behind: Vec<Option<i64>> = last
        .iter()
        .zip(caught_up)
        .filter(|(_, c)| !**c)
        .map(|(l, _)| *l)
        .collect();
    if behind.is_empty() {
        last.iter().flatten().copied().max()
    } else {
        behind
            .into_iter()
            .collect::<Option<Vec<i64>>>()?
            .into_iter()
            .min()
    }
}

#[test]
fn markers_appear_exactly_when_every_partition_has_passed_the_hour() {
    let config = broker();
    let topic = fresh_topic("lake-markers");
    ensure_topic(&config, &topic, 2).unwrap();
    // Minutes after 10:00 of each partition's records.
    let minutes: [&[i64]; 2] = [&[5, 30, 70, 100, 140], &[10, 50, 115, 150, 185]];
    for (partition, times) in minutes.iter().enumerate() {
        produce_stamped(
            &config,
            &topic,
            partition as i32,
            &values(0, times.len()),
            |i| Some(at_minute(times[i])),
        );
    }
    let (root, group) = (tempfile::tempdir().unwrap(), fresh_topic("g"));
    let storage = local(root.path());
    let mut seen: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut through: Option<i64> = None;
    for run in 1..=5 {
        // One record a partition a run.
        let report: TopicReport = export(
            &config,
            &topic,
            &group,
            json!({"num_messages": 1}),
            &storage,
            &hourly(&format!("run-{run}"), LateData::Strict, true),
        );
        assert_eq!(report.records, 2);
        let last: Vec<Option<i64>> = minutes
            .iter()
            .map(|m| Some(at_minute(m[run - 1])))
            .collect();
        let caught_up: Vec<bool> = minutes.iter().map(|m| m.len() == run).collect();
        through = through.max(complete_through(&last, &caught_up));
        let expected: Vec<String> = (10..14)
            .filter(|h| through.is_some_and(|t| at_minute(60 * (h - 9)) <= t))
            .map(|h| folder(h as u32))
            .collect();
        let now = markers(root.path(), &topic);
        assert_eq!(
            now.keys().cloned().collect::<Vec<_>>(),
            expected,
            "after run {run}"
        );
        for (name, bytes) in &seen {
            assert_eq!(&now[name], bytes, "marker {name} rewritten by run {run}");
        }
        seen = now;
    }
    // By run 5 both partitions are caught up, p1 at 13:05: 10 to 12.
    assert_eq!(seen.len(), 3);
}

#[test]
fn a_partitions_files_roll_on_size_age_or_idleness_and_hold_each_record_once() {
    let config = broker();
    let topic = fresh_topic("lake-roll");
    ensure_topic(&config, &topic, 1).unwrap();
    // 100 records a second apart from 10:00: one hour, one folder.
    produce_stamped(&config, &topic, 0, &values(0, 100), |i| {
        Some(at_minute(0) + i as i64 * 1_000)
    });
    // Each case sets one roll of the options (none: the defaults).
    type Roll = fn(&mut ExportOptions);
    let cases: [(&str, Roll); 4] = [
        ("none due", |_| {}),
        ("size", |o| o.target_file_bytes = 1),
        ("age", |o| o.max_file_age = std::time::Duration::ZERO),
        ("idleness", |o| o.max_file_idle = std::time::Duration::ZERO),
    ];
    for (name, roll) in cases {
        let (root, group) = (tempfile::tempdir().unwrap(), fresh_topic("g"));
        let storage = local(root.path());
        let mut options = hourly("run-1", LateData::Strict, false);
        options.batch_size = 10;
        roll(&mut options);
        let report = export(&config, &topic, &group, json!({}), &storage, &options);
        assert_eq!(report.records, 100, "{name}");
        if name == "none due" {
            // The defaults (128 MiB, 5 minutes, 1 minute): one file.
            assert_eq!((report.rolled, report.files.len()), (0, 1), "{name}");
        } else {
            // Each step's records at least once past the setting: files
            // stored as the run goes, each named by its own offsets.
            assert!(report.rolled >= 2, "{name}: rolled {}", report.rolled);
            let files = report.files.len();
            assert!(
                files == report.rolled || files == report.rolled + 1,
                "{name}: a file a unit rolled, and the last one: {files}"
            );
        }
        assert_each_once(root.path(), 1, 100);
    }
}

#[test]
fn a_re_export_of_chosen_offsets_marks_nothing_and_the_groups_next_run_does() {
    let config = broker();
    let topic = fresh_topic("lake-reexport");
    ensure_topic(&config, &topic, 2).unwrap();
    // p0 at 10:05 and 12:05, p1 at 10:10 and 11:30.
    let minutes: [[i64; 2]; 2] = [[5, 125], [10, 90]];
    for (partition, times) in minutes.iter().enumerate() {
        produce_stamped(&config, &topic, partition as i32, &values(0, 2), |i| {
            Some(at_minute(times[i]))
        });
    }
    let (root, group) = (tempfile::tempdir().unwrap(), fresh_topic("g"));
    let storage = local(root.path());
    // Partition 0 alone, caught up at 12:05: had it counted, hours 10 and
    // 11 would look complete, though partition 1 was never read.
    let report = export(
        &config,
        &topic,
        &group,
        json!({"starting_offsets": {"0": 0}}),
        &storage,
        &hourly("run-1", LateData::Strict, true),
    );
    assert_eq!(report.records, 2);
    assert!(
        markers(root.path(), &topic).is_empty(),
        "a re-export of chosen offsets marks nothing: {:?}",
        markers(root.path(), &topic).keys()
    );
    // The group's run reads both partitions: both caught up, the furthest
    // at 12:05, so 10 and 11 are complete.
    export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &hourly("run-2", LateData::Strict, true),
    );
    assert_eq!(
        markers(root.path(), &topic)
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec![folder(10), folder(11)]
    );
    assert_each_once(root.path(), 2, 2);
}

#[test]
fn records_of_a_complete_hour_follow_each_late_data_policy() {
    for policy in [LateData::Strict, LateData::Current, LateData::Late] {
        let config = broker();
        let topic = fresh_topic("lake-late");
        ensure_topic(&config, &topic, 1).unwrap();
        // 10:10, 11:20, 12:30: once exported, hours 10 and 11 are complete.
        let on_time = [10, 80, 150];
        produce_stamped(&config, &topic, 0, &values(0, 3), |i| {
            Some(at_minute(on_time[i]))
        });
        let (root, group) = (tempfile::tempdir().unwrap(), fresh_topic("g"));
        let storage = local(root.path());
        export(
            &config,
            &topic,
            &group,
            json!({}),
            &storage,
            &hourly("run-1", policy, true),
        );
        let marked = markers(root.path(), &topic);
        assert_eq!(marked.len(), 2, "{policy:?}: hours 10 and 11");

        // 10:45 is late; 12:40 is not.
        produce_stamped(&config, &topic, 0, &values(3, 5), |i| {
            Some(at_minute([45, 160][i]))
        });
        let report = export(
            &config,
            &topic,
            &group,
            json!({}),
            &storage,
            &hourly("run-2", policy, true),
        );
        let late: u64 = report.files.iter().map(|f| f.late).sum();
        assert_eq!(late, 1, "{policy:?}: one record placed late");
        let late_file = report
            .files
            .iter()
            .find(|f| f.late == 1)
            .expect("the late record's file");
        let (expected_prefix, expected_folder) = match policy {
            LateData::Strict => (format!("topic={topic}"), folder(10)),
            LateData::Current => (format!("topic={topic}"), folder(12)),
            LateData::Late => (format!("_late/topic={topic}"), folder(10)),
        };
        assert!(
            late_file
                .key
                .starts_with(&format!("{expected_prefix}/{expected_folder}/")),
            "{policy:?}: {}",
            late_file.key
        );
        let meta = footer(&root.path().join(&late_file.key));
        assert_eq!(
            meta.get("sluice.late_data").map(String::as_str),
            Some(policy.name()),
            "{meta:?}"
        );
        assert_eq!(
            meta.get("sluice.late_records").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            markers(root.path(), &topic),
            marked,
            "{policy:?}: 12:40 completes nothing new, and no marker is rewritten"
        );
        assert_each_once(root.path(), 1, 5);
        // The late record's row keeps its own time, wherever it is.
        let glob = root.path().join("**/*.parquet");
        if let Some(read) = duckdb(
            &glob,
            Some(&format!("timestamp = epoch_ms({})", at_minute(45))),
            0,
        ) {
            assert_eq!(read["where_count"], 1, "{policy:?}: {read}");
        }
    }
}

#[test]
fn a_delta_table_by_hour_is_compacted_and_read_once_by_deltalake_with_pruning() {
    use sluice_host::config::ExportFormat;
    use sluice_tests::delta::{commits, live_adds, read_with_deltalake, stored};
    let config = broker();
    let topic = fresh_topic("lake-delta");
    let count = four_hours(&config, &topic);
    let (root, group) = (tempfile::tempdir().unwrap(), fresh_topic("g"));
    let storage = local(root.path());
    let table = root.path().join(&topic);
    let delta = |run: &str, compact| {
        let mut options = hourly(run, LateData::Strict, compact);
        options.format = ExportFormat::Delta;
        options
    };
    for run in 0..12 {
        let report = export(
            &config,
            &topic,
            &group,
            json!({"num_messages": 20}),
            &storage,
            &delta(&format!("run-{run:03}"), false),
        );
        assert_eq!(report.records, 40);
    }
    let hour_files = |hour: u32| {
        live_adds(&table)
            .values()
            .filter(|add| {
                let value = add["partitionValues"]["hour"].as_str();
                value.and_then(|h| h.parse::<u32>().ok()) == Some(hour)
            })
            .count()
    };
    assert_eq!(hour_files(11), 6, "three runs an hour, two partitions");
    let report = export(
        &config,
        &topic,
        &group,
        json!({}),
        &storage,
        &delta("run-compact", true),
    );
    let compaction = &report.time.as_ref().unwrap().compaction;
    assert_eq!((compaction.files_in, compaction.files_out), (18, 6));
    for hour in 10..13 {
        assert_eq!(hour_files(hour), 2, "hour {hour}: one file a partition");
    }
    assert_eq!(hour_files(13), 6, "hour 13 is not complete");
    let log = commits(&table);
    let optimize: Vec<&serde_json::Value> = log
        .iter()
        .flatten()
        .filter(|a| a["commitInfo"]["operation"] == "OPTIMIZE")
        .collect();
    assert_eq!(optimize.len(), 6, "one commit a partition and hour");
    for actions in &log {
        if actions[0]["commitInfo"]["operation"] == "OPTIMIZE" {
            assert!(
                actions
                    .iter()
                    .filter_map(|a| a.get("add").or_else(|| a.get("remove")))
                    .all(|a| a["dataChange"] == false),
                "{actions:?}"
            );
            assert!(actions.iter().all(|a| a.get("txn").is_none()));
        }
    }
    let seen = stored(&table);
    assert_eq!(seen.len(), 2 * count);
    assert!(
        seen.values().all(|n| *n == 1),
        "every record once in the table"
    );
    let markers: Vec<String> = sluice_tests::stored::files_under(&table.join("_complete"))
        .iter()
        .filter_map(|p| p.strip_prefix(table.join("_complete")).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|n| n != "_state.json")
        .collect();
    assert_eq!(markers, [folder(10), folder(11), folder(12)]);
    let request = json!({
        "uri": table,
        "partitions": [["dt", "=", "2026-12-05"], ["hour", "=", "11"]],
    });
    if let Some(read) = read_with_deltalake(&request) {
        assert_eq!(read["rows"], 2 * count);
        let offsets = read["offsets"].as_object().unwrap();
        assert_eq!(offsets.len(), 2 * count);
        assert!(offsets.values().all(|n| n == 1), "no row twice");
        assert_eq!(read["partition_columns"], json!(["dt", "hour"]));
        assert_eq!(read["partition_files"], 2, "hour 11 alone: {read}");
        assert_eq!(read["partition_rows"], 120, "{read}");
        assert_eq!(
            read["properties"]["sluice.completeThrough"], "2026-12-05T13:00:00Z",
            "{read}"
        );
    }
}

#[test]
fn a_value_field_places_records_by_day_and_a_record_without_it_is_a_dead_letter() {
    let config = broker();
    let topic = fresh_topic("lake-field");
    ensure_topic(&config, &topic, 1).unwrap();
    // Kafka timestamps all on 2026-12-05; the values say otherwise.
    let records = [
        r#"{"at": "2026-12-01T23:59:59Z"}"#,
        r#"{"at": 1796688000000}"#,
        r#"{"other": 1}"#,
        r#"{"at": "2026-12-02T00:00:00+02:00"}"#,
    ];
    produce_stamped(&config, &topic, 0, &records, |_| Some(at_minute(0)));
    let (root, group) = (tempfile::tempdir().unwrap(), fresh_topic("g"));
    let storage = local(root.path());
    let mut options = hourly("run-1", LateData::Strict, true);
    options.time = Some(TimeLayout {
        by: PartitionBy::Day,
        field: Some("at".into()),
        late: LateData::Strict,
    });
    let report = export(&config, &topic, &group, json!({}), &storage, &options);
    assert_eq!((report.records, report.dead_lettered), (4, 1));
    let folders: BTreeMap<String, usize> = files_by_folder(root.path(), &format!("topic={topic}"))
        .into_iter()
        .map(|(folder, files)| (folder, files.len()))
        .collect();
    // 2026-12-02T00:00+02:00 is the 1st, 22:00 UTC; 1796688000000 is the 8th.
    assert_eq!(
        folders.keys().collect::<Vec<_>>(),
        ["dt=2026-12-01", "dt=2026-12-05", "dt=2026-12-08"],
        "the dead letter's empty file goes by its Kafka timestamp"
    );
    let dead = report
        .dead_letter_files()
        .next()
        .expect("a dead-letter file");
    assert!(dead.contains("dt=2026-12-05"), "{dead}");
    let line = std::fs::read_to_string(root.path().join(dead)).unwrap();
    assert!(line.contains("no time field `at`"), "{line}");
    assert_each_once(root.path(), 1, 4);
}
