//! `sluice export` crashed again and again while its topic grows: SIGKILL
//! at random moments, and an abort at each named step (mid-batch, before
//! the upload, between a file's dead letters and its data, between the
//! upload and the commit; for a Delta table also before and after the
//! table's commit and inside a checkpoint). Afterwards the union of every
//! stored file (for Delta: of every file the table's log holds), data rows
//! and dead letters together, holds every record exactly once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sluice_host::kafka::{ProduceRecord, Producer, ensure_topic};
use sluice_tests::{broker, fresh_topic, read_all};

/// How a round ends: killed after a delay, or aborted at a named point.
#[derive(Debug, Clone, Copy)]
enum Crash {
    KillAfter(Duration),
    AbortAt(&'static str),
    Finish,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Finished,
    Failed,
    Killed,
}

/// Runs one export.
fn export_once(dir: &Path, out: &Path, crash: Crash, round: usize) -> Ended {
    let log = std::fs::File::create(dir.join(format!("export-{round}.log"))).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        // A checkpoint after every Delta commit, so that crashes hit them.
        .args([
            "export",
            "--max-rows-per-file",
            "400",
            "--checkpoint-interval",
            "1",
        ])
        .arg("--topics")
        .arg(dir.join("topics.json"))
        .arg("--connections")
        .arg(dir.join("connections.json"))
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(log);
    if let Crash::AbortAt(point) = crash {
        command.env("FAILPOINTS", format!("{point}=return"));
    }
    let mut child = command.spawn().expect("start sluice export");
    if let Crash::KillAfter(delay) = crash {
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().expect("SIGKILL the export");
            child.wait().unwrap();
            return Ended::Killed;
        }
    }
    if child.wait().unwrap().success() {
        Ended::Finished
    } else {
        Ended::Failed
    }
}

/// A small deterministic generator, seeded from the clock (the seed is
/// printed, so a failing run can be repeated).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn crashes_at_any_point_store_every_record_exactly_once() {
    crash_loop(
        "parquet",
        &[
            "export::mid-batch",
            "export::before-upload",
            "export::between-dead-letters-and-data",
            "export::before-commit",
        ],
    );
}

#[test]
fn crashes_at_any_point_leave_every_record_once_in_the_delta_table() {
    crash_loop(
        "delta",
        &[
            "export::mid-batch",
            "export::before-upload",
            "export::between-dead-letters-and-data",
            "delta::before-commit",
            "delta::after-commit",
            "delta::between-checkpoint-and-pointer",
            // After the table's commit, before the group's.
            "export::before-commit",
        ],
    );
}

/// Rounds of export while the topic grows, each aborted at one of
/// `points` (in turn) or SIGKILLed at a random moment, then one that
/// finishes; every record must then be stored exactly once.
fn crash_loop(format: &str, points: &[&'static str]) {
    let config = broker();
    let topic = fresh_topic("export-crash");
    ensure_topic(&config, &topic, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let group = fresh_topic("export-crash-g");
    std::fs::write(
        dir.path().join("topics.json"),
        json!([{"topic": topic, "group_id": group, "format": format}]).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("connections.json"),
        json!({"bootstrap_servers": config.bootstrap_servers}).to_string(),
    )
    .unwrap();
    let seed = std::env::var("SLUICE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("crash loop seed {seed} (SLUICE_CRASH_SEED repeats it)");
    let mut random = Lcg(seed);

    let producer = Producer::new(&config).unwrap();
    let mut produced = 0u64;
    let mut grow = |count: u64| {
        let records: Vec<ProduceRecord> = (produced..produced + count)
            .map(|i| ProduceRecord {
                timestamp: None,
                topic: topic.clone(),
                partition: Some((i % 3) as i32),
                key: None,
                // Every 37th record is not JSON: it goes to the dead letters.
                value: Some(if i % 37 == 0 {
                    format!("not json {i}").into_bytes()
                } else {
                    json!({"i": i}).to_string().into_bytes()
                }),
                headers: Vec::new(),
            })
            .collect();
        producer.send_all(&records).unwrap();
        produced += count;
    };

    let mut rounds = Vec::new();
    // An abort at each point in turn, a SIGKILL between two aborts.
    for round in 0..2 * points.len() {
        grow(300 + random.below(900));
        let crash = if round % 2 == 0 {
            Crash::AbortAt(points[round / 2])
        } else {
            Crash::KillAfter(Duration::from_millis(20 + random.below(600)))
        };
        let ended = export_once(dir.path(), &out, crash, round);
        if let Crash::AbortAt(point) = crash {
            assert_eq!(
                ended,
                Ended::Failed,
                "round {round} did not stop at {point}"
            );
        }
        rounds.push((crash, ended));
    }
    grow(500);
    assert_eq!(
        export_once(dir.path(), &out, Crash::Finish, 99),
        Ended::Finished,
        "the last run finishes; logs in {}",
        dir.keep().display()
    );

    let seen = sluice_tests::stored::in_output(&out, &topic, format);
    let in_topic: Vec<(i32, i64)> = read_all(&config, &topic)
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    assert_eq!(in_topic.len() as u64, produced);
    if let Some(wrong) = sluice_tests::stored::not_each_once(&seen, &in_topic) {
        panic!("seed {seed}, rounds {rounds:?}: {wrong}");
    }
    if format == "delta" {
        let request = json!({"uri": out.join(&topic), "app_ids": [format!("{group}-0")]});
        if let Some(read) = sluice_tests::delta::read_with_deltalake(&request) {
            // Every 37th record is a dead letter, every other one a row.
            let rows = read["offsets"].as_object().unwrap();
            assert_eq!(rows.len() as u64, produced - produced.div_ceil(37));
            assert!(
                rows.values().all(|n| n == 1),
                "no row twice in deltalake's read"
            );
            assert_eq!(read["rows"], rows.len());
            assert_eq!(read["pyarrow_rows"], rows.len());
        }
    }
    let killed = rounds.iter().filter(|(_, e)| *e == Ended::Killed).count();
    eprintln!(
        "{produced} records; {} runs aborted at a step, {killed} killed mid-run: each record stored once",
        points.len()
    );
}
