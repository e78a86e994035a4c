//! A time-partitioned `sluice export` aborted at every step of a run and
//! of a compaction, as files and as a Delta table: after the unit's files
//! are stored and before their ranges are recorded, before a compaction's
//! merged files are stored, between storing them and deciding, between
//! the decision and removing the old files, before a marker, and between
//! the table's commits and the group's. Records arrive half an hour at a
//! time, each half hour exported by a run that does not compact; then a
//! run that compacts (with records of its own for the steps of storing and
//! marking) is aborted at the next step. Afterwards every record is stored exactly once, every complete
//! hour holds one file a partition, and `sluice export status` says so.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;
use sluice_host::kafka::{ProduceRecord, Producer, ensure_topic};
use sluice_tests::lake::{at_minute, duckdb, files_by_folder};
use sluice_tests::stored::{in_output, not_each_once};
use sluice_tests::{broker, fresh_topic, read_all};

const PARTITIONS: i32 = 3;

/// Runs one export; `abort_at` names a crash point. Whether it succeeded.
fn export_once(
    dir: &Path,
    out: &Path,
    abort_at: Option<&str>,
    compact: bool,
    round: usize,
) -> bool {
    let log = std::fs::File::create(dir.join(format!("export-{round}.log"))).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(["export", "--checkpoint-interval", "1"])
        .arg("--topics")
        .arg(dir.join("topics.json"))
        .arg("--connections")
        .arg(dir.join("connections.json"))
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(log);
    if !compact {
        command.arg("--no-compact");
    }
    if let Some(point) = abort_at {
        command.env("FAILPOINTS", format!("{point}=return"));
    }
    command.status().expect("run sluice export").success()
}

fn lake_crash_loop(format: &str, points: &[&str]) {
    let config = broker();
    let topic = fresh_topic("lake-crash");
    ensure_topic(&config, &topic, PARTITIONS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let group = fresh_topic("lake-crash-g");
    std::fs::write(
        dir.path().join("topics.json"),
        json!([{"topic": topic, "group_id": group, "format": format, "partition_by": "hour"}])
            .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("connections.json"),
        json!({"bootstrap_servers": config.bootstrap_servers}).to_string(),
    )
    .unwrap();
    let producer = Producer::new(&config).unwrap();
    let mut half_hours = 0i64;
    // Thirty records a partition, one a minute, of the next half hour;
    // every 29th is not JSON (a dead letter).
    let mut grow = || {
        let records: Vec<ProduceRecord> = (0..PARTITIONS)
            .flat_map(|partition| (0..30).map(move |m| (partition, half_hours * 30 + m)))
            .map(|(partition, minute)| ProduceRecord {
                timestamp: Some(at_minute(minute)),
                topic: topic.clone(),
                partition: Some(partition),
                key: None,
                value: Some(if minute % 29 == 7 {
                    format!("not json {minute}").into_bytes()
                } else {
                    json!({"minute": minute}).to_string().into_bytes()
                }),
                headers: Vec::new(),
            })
            .collect();
        producer.send_all(&records).unwrap();
        half_hours += 1;
    };
    let mut round = 0;
    // Half hours produced (`grow` keeps its own count).
    let mut halves = 0;
    for point in points {
        // Half an hour a run, without compacting: each hour in two units a
        // partition (at least: a run after a crash reads more).
        for _ in 0..2 {
            grow();
            halves += 1;
            round += 1;
            assert!(
                export_once(dir.path(), &out, None, false, round),
                "round {round} finishes; logs in {}",
                dir.path().display()
            );
        }
        // The run that compacts stops at `point`: one compaction step, or
        // (with records of its own) a step of storing them or of marking
        // the hour they complete.
        if !point.starts_with("compact::") && !point.starts_with("ranges::") {
            if *point == "complete::before-marker" && halves % 2 == 1 {
                // Its records are to complete an hour: the first half of
                // the next.
                grow();
                halves += 1;
                round += 1;
                assert!(export_once(dir.path(), &out, None, false, round));
            }
            grow();
            halves += 1;
        }
        round += 1;
        assert!(
            !export_once(dir.path(), &out, Some(point), true, round),
            "round {round} did not stop at {point}; logs in {}",
            dir.keep().display()
        );
    }
    grow();
    round += 1;
    assert!(
        export_once(dir.path(), &out, None, true, round),
        "the last run finishes; logs in {}",
        dir.keep().display()
    );

    let seen = in_output(&out, &topic, format);
    let all = read_all(&config, &topic);
    let in_topic: Vec<(i32, i64)> = all.iter().map(|r| (r.partition, r.offset)).collect();
    let rows = all
        .iter()
        .filter(|r| {
            r.value
                .as_deref()
                .is_some_and(|v| serde_json::from_slice::<serde_json::Value>(v).is_ok())
        })
        .count();
    if let Some(wrong) = not_each_once(&seen, &in_topic) {
        panic!("{wrong}; logs in {}", dir.keep().display());
    }

    // Every hour but the last two (the newest is still open) is complete,
    // and compacted to one file a partition.
    let hours = (half_hours / 2) as usize;
    let folders = if format == "delta" {
        let mut folders: std::collections::BTreeMap<String, usize> = Default::default();
        for path in sluice_tests::delta::live_adds(&out.join(&topic)).keys() {
            if let Some((folder, _)) = path.rsplit_once('/') {
                *folders.entry(folder.to_owned()).or_default() += 1;
            }
        }
        folders
    } else {
        files_by_folder(&out, &format!("topic={topic}"))
            .into_iter()
            .map(|(folder, files)| (folder, files.len()))
            .collect()
    };
    let complete: Vec<(&String, &usize)> = folders.iter().take(hours - 1).collect();
    assert!(
        complete
            .iter()
            .all(|(_, files)| **files == PARTITIONS as usize),
        "one file a partition in each complete hour: {folders:?}"
    );
    if format == "parquet"
        && let Some(read) = duckdb(&out.join(format!("topic={topic}/**/*.parquet")), None, 0)
    {
        assert_eq!(read["rows"], rows, "{read}");
        assert_eq!(read["pairs"], rows, "no row twice: {read}");
    }

    let status = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["export", "status"])
        .arg("--topics")
        .arg(dir.path().join("topics.json"))
        .arg("--connections")
        .arg(dir.path().join("connections.json"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    let first = folders.keys().next().unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(first.as_str()))
        .unwrap_or_else(|| panic!("{first} in {text}"));
    assert!(
        line.contains("complete") && line.contains("yes") && line.contains(&PARTITIONS.to_string()),
        "{line}"
    );
    let newest = folders.keys().last().unwrap();
    let line = text.lines().find(|l| l.contains(newest.as_str())).unwrap();
    assert!(line.contains("open") && line.contains("no"), "{line}");
    eprintln!(
        "{round} runs, {} aborted at a step: each record stored once\n{text}",
        points.len()
    );
}

#[test]
fn a_time_partitioned_export_aborted_at_every_step_stores_each_record_once() {
    lake_crash_loop(
        "parquet",
        &[
            "export::after-store",
            "compact::before-store",
            "compact::after-store",
            "ranges::decided",
            "ranges::before-remove",
            "complete::before-marker",
            "export::before-commit",
        ],
    );
}

#[test]
fn a_table_by_hour_aborted_at_every_step_holds_each_record_once() {
    lake_crash_loop(
        "delta",
        &[
            "export::after-store",
            "compact::before-store",
            "compact::after-store",
            "complete::before-marker",
            "export::before-commit",
        ],
    );
}
