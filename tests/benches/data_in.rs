//! Getting data into Kafka, all measured in one run against the broker
//! `scripts/services.sh up` started: the broker's raw produce rate
//! (`Producer::send_all` of pre-built ~300-byte JSON records), the
//! generators' rate (generate + serialize + produce, as `sluice gen` does)
//! and `sluice import`'s rate from JSON lines, Avro and Parquet files. Each
//! figure is printed with its ratio to the raw produce rate.
//!
//! `cargo bench -p sluice-tests --bench data_in [-- ROWS]` (1,000,000 rows;
//! 20,000 under `cargo test --all-targets`).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sluice_host::generate::{
    ClickstreamGenerator, ExpediaGenerator, Generator, Pacing, StayMix, produce_generated,
};
use sluice_host::import::{ImportOptions, import};
use sluice_host::kafka::{ProduceRecord, Producer, ensure_topic};
use sluice_host::storage::AzureCredentials;
use sluice_tests::bench::expedia_avro;
use sluice_tests::{broker, fresh_topic};

/// Records per `send_all` (and rows per acknowledged import chunk).
const CHUNK: usize = 10_000;
/// Partitions of every topic, as `sluice gen` creates them.
const PARTITIONS: i32 = 3;
/// Files each import reads, as a Spark job writes part files.
const FILES: usize = 10;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // then this is a quick run over a few rows.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benchmarking { 1_000_000 } else { 20_000 });
    let config = broker();
    let mut results: Vec<(String, usize, f64, Duration)> = Vec::new();

    // (a) The broker's raw produce rate.
    eprintln!("building {rows} records of ~300 bytes...");
    let topic = new_topic("data-in-raw");
    let records: Vec<ProduceRecord> = (0..rows).map(|i| raw_record(&topic, i)).collect();
    let bytes = average(records.iter().map(|r| r.value.as_ref().map_or(0, Vec::len)));
    let producer = Producer::new(&config).expect("producer");
    eprintln!("producing them in chunks of {CHUNK}...");
    let raw = time(|| {
        for chunk in records.chunks(CHUNK) {
            producer.send_all(chunk).expect("produce");
        }
    });
    drop(records);
    results.push(("raw produce (send_all)".into(), rows, bytes, raw));

    // (b) The generators, as `sluice gen` drives them.
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let expedia = || Generator::Expedia(ExpediaGenerator::new(7, StayMix::default()));
    let clickstream = || Generator::Clickstream(ClickstreamGenerator::new(7, start));
    let generators: [(&str, Generator, f64); 2] = [
        (
            "gen expedia",
            expedia(),
            average(
                ExpediaGenerator::new(7, StayMix::default())
                    .take(1000)
                    .map(size),
            ),
        ),
        (
            "gen clickstream",
            clickstream(),
            average(ClickstreamGenerator::new(7, start).take(1000).map(size)),
        ),
    ];
    for (name, generator, bytes) in generators {
        eprintln!("{name}: {rows} records...");
        let topic = new_topic("data-in-gen");
        let pacing = Pacing {
            rate: None,
            max_batch: CHUNK,
        };
        let elapsed = time(|| {
            produce_generated(&config, &topic, rows as u64, pacing, generator, |_| {})
                .expect("generated records produced");
        });
        results.push((name.into(), rows, bytes, elapsed));
    }

    // (c) Imports of the same expedia rows from each file format.
    let dir = tempfile::tempdir().expect("temp folder");
    eprintln!("writing {rows} expedia rows as JSON lines, Avro and Parquet...");
    let mut bookings = ExpediaGenerator::new(11, StayMix::default());
    let per_file = rows.div_ceil(FILES);
    let mut left = rows;
    let mut part = 0;
    while left > 0 {
        let n = left.min(per_file);
        let values: Vec<Value> = (&mut bookings).take(n).collect();
        let name = format!("part-{part:05}");
        write(
            &dir.path().join("jsonl"),
            &format!("{name}.jsonl"),
            &jsonl(&values),
        );
        write(
            &dir.path().join("avro"),
            &format!("{name}.avro"),
            &expedia_avro::container_file(&values),
        );
        write(
            &dir.path().join("parquet"),
            &format!("{name}.parquet"),
            &expedia_avro::parquet_file(&values),
        );
        left -= n;
        part += 1;
    }
    for (name, folder) in [
        ("import JSON lines", "jsonl"),
        ("import Avro (snappy)", "avro"),
        ("import Parquet (snappy)", "parquet"),
    ] {
        eprintln!("{name}: {rows} rows...");
        let folder = dir.path().join(folder);
        let file_bytes = folder_bytes(&folder) as f64 / rows as f64;
        let topic = new_topic("data-in-import");
        let options = ImportOptions {
            key_field: Some("id".into()),
            chunk_rows: CHUNK,
            ..ImportOptions::default()
        };
        let url = folder.to_str().expect("temp folder path is UTF-8");
        let mut report = None;
        let elapsed = time(|| {
            report = Some(
                import(
                    &config,
                    url,
                    &AzureCredentials::default(),
                    &topic,
                    &options,
                    |_| {},
                )
                .expect("import ran"),
            );
        });
        let report = report.expect("import report");
        assert!(report.succeeded(), "{name}: {:?}", report.failed);
        assert_eq!(report.rows(), rows as u64, "{name}: every row imported");
        results.push((name.to_owned(), rows, file_bytes, elapsed));
    }

    println!("\ngetting {rows} rows into Kafka ({PARTITIONS} partitions, chunks of {CHUNK})\n");
    println!(
        "{:<26} {:>10} {:>10} {:>12} {:>10} {:>10}",
        "what", "rows", "seconds", "rows/s", "bytes/row", "vs raw"
    );
    let raw_rate = rows as f64 / raw.as_secs_f64();
    for (what, rows, bytes, elapsed) in &results {
        let rate = *rows as f64 / elapsed.as_secs_f64();
        println!(
            "{what:<26} {rows:>10} {:>10.2} {rate:>12.0} {bytes:>10.0} {:>9.2}x",
            elapsed.as_secs_f64(),
            rate / raw_rate,
        );
    }
    println!(
        "\nbytes/row: the record value for produce and gen, the file bytes for import; \
         vs raw: rows/s over raw produce rows/s"
    );
}

fn time(run: impl FnOnce()) -> Duration {
    let started = Instant::now();
    run();
    started.elapsed()
}

fn new_topic(prefix: &str) -> String {
    let topic = fresh_topic(prefix);
    ensure_topic(&broker(), &topic, PARTITIONS).expect("create topic");
    topic
}

fn average(sizes: impl Iterator<Item = usize>) -> f64 {
    let (sum, n) = sizes.fold((0, 0), |(sum, n), s| (sum + s, n + 1));
    sum as f64 / n.max(1) as f64
}

fn size(value: Value) -> usize {
    value.to_string().len()
}

/// A JSON record of exactly 300 bytes, keyed by its number.
fn raw_record(topic: &str, i: usize) -> ProduceRecord {
    let head = format!(r#"{{"id":{i},"source":"bench","payload":""#);
    let padding = 300 - head.len() - 2;
    let value = format!("{head}{}\"}}", "x".repeat(padding));
    debug_assert_eq!(value.len(), 300);
    ProduceRecord {
        timestamp: None,
        topic: topic.to_owned(),
        partition: None,
        key: Some(i.to_string().into_bytes()),
        value: Some(value.into_bytes()),
        headers: Vec::new(),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create folder");
    std::fs::write(dir.join(name), bytes).expect("write file");
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read folder")
        .map(|e| e.expect("folder entry").metadata().expect("metadata").len())
        .sum()
}

fn jsonl(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        serde_json::to_writer(&mut out, value).expect("JSON");
        out.push(b'\n');
    }
    out
}
