//! A key search over a big topic, measured whole from outside: `sluice
//! fetch --key` (the release binary: the partitions the producer's
//! partitioners name, each read to its end) beside what tools without a
//! partitioner do, a confluent-kafka consumer reading every partition to
//! its end and keeping the records with the key (`python/search_key_scan.py`),
//! and that consumer reading only the key's partition (the same records as
//! Sluice, so the ratio is the cost per record). Every process is timed
//! from its start to its exit, CPU from `wait4` (start-up, connecting and
//! the watermarks included); all must find the same records.
//!
//! The topic: 32 partitions, generated bookings keyed `user-<7 digits>`,
//! five records a user spread over the whole topic, produced by Sluice's
//! producer (librdkafka's default partitioner, `consistent_random`).
//!
//! `cargo build --release -p sluice && cargo bench -p sluice-tests --bench
//! search_key [-- RECORDS]` (1,000,000 records; 2,000 under `cargo test
//! --all-targets`). `SLUICE_BIN=path` measures another `sluice` binary. The
//! test broker (tansu) reads about 17k records/s, so the full scan takes
//! about a minute; on Kafka every figure is smaller, the ratio of records
//! read the same.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;
use sluice_host::generate::{ExpediaGenerator, StayMix};
use sluice_host::kafka::{InFlight, KafkaConfig, ProduceRecord, Producer, ensure_topic};
use sluice_host::search::Partitioner;
use sluice_tests::bench::{self, Measured, Table, run_measured};
use sluice_tests::{broker, fresh_topic};

const PARTITIONS: i32 = 32;
/// Records per key: the search finds a handful.
const PER_KEY: usize = 5;
/// Records handed to the producer at once; two batches in flight.
const CHUNK: usize = 10_000;

const SLUICE: &str = "sluice fetch --key (murmur2, consistent_random)";
const SLUICE_ONE: &str = "sluice fetch --key --partitioner consistent_random";
const PYTHON_ALL: &str = "python: every partition, filter by key";
const PYTHON_ONE: &str = "python: the key's partition, filter by key";

/// The key of the `i`th record among `users`: each user's records are
/// spread over the topic's whole history.
fn user_key(i: usize, users: usize) -> String {
    format!("user-{:07}", (i * 7_919) % users)
}

fn main() {
    let count = bench::count(1_000_000, 2_000);
    let users = (count / PER_KEY).max(1);
    // A user whose key the two default partitioners put in different
    // partitions, as they do 31 times in 32: the default search reads two.
    let key = (users / 3..users)
        .map(|i| user_key(i, users))
        .find(|key| {
            Partitioner::Murmur2.partition(key.as_bytes(), PARTITIONS)
                != Partitioner::ConsistentRandom.partition(key.as_bytes(), PARTITIONS)
        })
        .expect("a key the two partitioners place apart");
    let config = broker();
    let topic = fresh_topic("bench-search-key");
    ensure_topic(&config, &topic, PARTITIONS).expect("topic");
    eprintln!("producing {count} bookings keyed by {users} users to {topic}...");
    let started = Instant::now();
    let with_key = produce(&config, &topic, count, users, &key);
    eprintln!(
        "produced in {:.1} s; {key} has {with_key} records",
        started.elapsed().as_secs_f64()
    );
    let partition = Partitioner::ConsistentRandom
        .partition(key.as_bytes(), PARTITIONS)
        .expect("a key that is not empty has a partition");

    let dir = tempfile::tempdir().expect("temp folder");
    let mut table = Table::new(format!(
        "key search: {key} ({with_key} records) in {count} records on {PARTITIONS} partitions"
    ));
    let sluice = sluice_binary();
    let fetch = |partitioners: &str| -> Result<Command, String> {
        if !sluice.exists() {
            return Err(format!(
                "no {} (cargo build --release -p sluice)",
                sluice.display()
            ));
        }
        let mut command = Command::new(&sluice);
        command.args([
            "fetch",
            "--topic",
            &topic,
            "--key",
            &key,
            "--partitioner",
            partitioners,
            "--count",
            "1000",
            "--brokers",
            &config.bootstrap_servers,
        ]);
        Ok(command)
    };
    let python = |partitions: &str| -> Result<Command, String> {
        let python = bench::python().ok_or(
            "no virtualenv with confluent-kafka (scripts/setup.sh python-tools)".to_owned(),
        )?;
        let mut command = Command::new(python);
        command
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/search_key_scan.py"))
            .args([
                format!("brokers={}", config.bootstrap_servers),
                format!("topic={topic}"),
                format!("key={key}"),
                format!("group={}", fresh_topic("bench-search-group")),
                format!("partitions={partitions}"),
            ]);
        Ok(command)
    };
    // Sluice first: whatever the broker caches on the way helps the peers.
    let variants: [(&str, Result<Command, String>); 4] = [
        (SLUICE, fetch("murmur2,consistent_random")),
        (SLUICE_ONE, fetch("consistent_random")),
        (PYTHON_ONE, python(&partition.to_string())),
        (PYTHON_ALL, python("all")),
    ];
    let mut measured: Vec<(&str, Measured)> = Vec::new();
    let mut found: Vec<(&str, BTreeSet<(i32, i64)>)> = Vec::new();
    for (name, command) in variants {
        let command = match command {
            Ok(command) => command,
            Err(why) => {
                eprintln!("skipping {name}: {why}");
                continue;
            }
        };
        eprintln!("{name}...");
        let (figures, matches) = run(name, command, dir.path());
        assert_eq!(
            matches.len(),
            with_key,
            "{name}: every record with the key, and no other"
        );
        found.push((name, matches));
        measured.push((name, figures));
    }
    for pair in found.windows(2) {
        assert_eq!(
            pair[0].1, pair[1].1,
            "{} and {} agree",
            pair[0].0, pair[1].0
        );
    }
    let figures = |name: &str| measured.iter().find(|(n, _)| *n == name).map(|(_, m)| m);
    // Each Sluice row's ratio: records per second beside the peer that read
    // the same partition.
    for (name, peer) in [
        (PYTHON_ALL, None),
        (PYTHON_ONE, None),
        (SLUICE, Some(PYTHON_ONE)),
        (SLUICE_ONE, Some(PYTHON_ONE)),
    ] {
        table.row(name, figures(name), peer);
    }
    for ours in [SLUICE, SLUICE_ONE] {
        if let (Some(a), Some(b)) = (figures(ours), figures(PYTHON_ALL)) {
            table.note(compared(ours, a, PYTHON_ALL, b));
        }
    }
    table.print();
}

/// Produces `count` generated bookings, record `i` keyed [`user_key`],
/// through Sluice's producer with librdkafka's default partitioner; the
/// number keyed `key`.
fn produce(config: &KafkaConfig, topic: &str, count: usize, users: usize, key: &str) -> usize {
    let producer = Producer::new(config).expect("producer");
    let mut bookings = ExpediaGenerator::new(7, StayMix::default());
    let mut in_flight: Option<InFlight> = None;
    let mut with_key = 0;
    for first in (0..count).step_by(CHUNK) {
        let records: Vec<ProduceRecord> = (first..count.min(first + CHUNK))
            .map(|i| {
                let user = user_key(i, users);
                with_key += usize::from(user == key);
                ProduceRecord {
                    timestamp: None,
                    topic: topic.to_owned(),
                    partition: None,
                    key: Some(user.into_bytes()),
                    value: Some(bookings.next_record().to_string().into_bytes()),
                    headers: Vec::new(),
                }
            })
            .collect();
        let sent = producer.send(&records).expect("records handed over");
        if let Some(earlier) = in_flight.replace(sent) {
            earlier.wait().expect("records produced");
        }
    }
    if let Some(last) = in_flight {
        last.wait().expect("records produced");
    }
    with_key
}

/// The `sluice` binary of this build's profile (release under `cargo
/// bench`), or `$SLUICE_BIN`.
fn sluice_binary() -> PathBuf {
    std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_exe()
                .expect("bench binary path")
                .parent()
                .and_then(Path::parent)
                .map(|profile| profile.join("sluice"))
                .expect("the bench binary in <target>/<profile>/deps")
        })
}

/// Runs one variant to its end; what it used (records: the records it
/// looked at; outputs: its matches) and the `(partition, offset)` of each
/// match.
fn run(name: &str, mut command: Command, dir: &Path) -> (Measured, BTreeSet<(i32, i64)>) {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stdout = dir.join(format!("{slug}.out"));
    let stderr = dir.join(format!("{slug}.err"));
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("output file"))
        .stderr(std::fs::File::create(&stderr).expect("log file"));
    let usage = run_measured(command);
    let out = std::fs::read_to_string(&stdout).expect("output");
    let log = std::fs::read_to_string(&stderr).expect("log");
    assert!(usage.success, "{name} failed:\n{log}");
    let (scanned, matches) = if name.starts_with("sluice") {
        // One JSON line per match; "... partitions [..], N looked at".
        let matches: Vec<(i32, i64)> = out.lines().map(|line| at(&parse(line))).collect();
        let scanned = log
            .lines()
            .find_map(|l| {
                l.strip_suffix(" looked at")?
                    .rsplit(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{name}: no count of records looked at in:\n{log}"));
        (scanned, matches)
    } else {
        let answer = parse(out.lines().last().unwrap_or_default());
        let matches: Vec<(i32, i64)> = answer["matches"]
            .as_array()
            .expect("matches")
            .iter()
            .map(|m| {
                (
                    m[0].as_i64().expect("partition") as i32,
                    m[1].as_i64().expect("offset"),
                )
            })
            .collect();
        (answer["scanned"].as_u64().expect("scanned"), matches)
    };
    eprint!("{log}");
    let unique: BTreeSet<(i32, i64)> = matches.iter().copied().collect();
    assert_eq!(unique.len(), matches.len(), "{name}: each match once");
    let measured = Measured {
        records: scanned,
        outputs: matches.len() as u64,
        seconds: usage.seconds,
        cpu_seconds: usage.cpu_seconds,
        peak_rss_kb: usage.peak_rss_kb,
        ..Measured::default()
    };
    (measured, unique)
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn at(record: &Value) -> (i32, i64) {
    (
        record["partition"].as_i64().expect("partition") as i32,
        record["offset"].as_i64().expect("offset"),
    )
}

/// Wall time, CPU time and records looked at of `ours` beside `theirs`.
fn compared(ours: &str, a: &Measured, theirs: &str, b: &Measured) -> String {
    format!(
        "{ours}: {:.2} s, {:.2} CPU-s, {} records looked at\n  vs {theirs}: {:.2} s, \
         {:.2} CPU-s, {} records\n  = {:.1}x less wall time, {:.1}x less CPU, {:.1}x fewer records",
        a.seconds,
        a.cpu_seconds,
        a.records,
        b.seconds,
        b.cpu_seconds,
        b.records,
        b.seconds / a.seconds.max(1e-9),
        b.cpu_seconds / a.cpu_seconds.max(1e-9),
        b.records as f64 / (a.records as f64).max(1.0),
    )
}
