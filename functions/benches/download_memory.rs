//! What `sluice serve` holds while it streams a search's whole result
//! (`GET /api/search/download`): downloads of a topic and of half of it,
//! many answers' worth of records each, beside a download of one small
//! answer (the process's fixed cost: librdkafka, the runtimes, the pooled
//! consumer), in each format. Each download is served by a process of its
//! own, whose peak RSS (`VmHWM`) is read once it is done; its growth over
//! the small download's is what the stream holds. The target: the whole
//! topic's growth about the half topic's (bounded by one answer: the
//! server's 10,000 records or 16 MiB, its encoding, librdkafka's fetch
//! queue), where a server that built the file in memory would grow twice
//! as much.
//!
//! `cargo bench -p sluice --bench download_memory [-- RECORDS]` (60,000
//! records of about 1 KB; 3,000 under `cargo test --all-targets`). Needs
//! the broker (`scripts/services.sh up`). The test broker reads about
//! 17,000 records/s, so the server's 10 s budget caps a download near
//! 150,000 records here; the file's summary says how far it got.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_host::kafka::ensure_topic;
use sluice_tests::http::{self, free_port};
use sluice_tests::{bench, broker, fresh_topic, produce_to};

const KEY: &str = "bench-key-0123456789abcdef0123456789";
/// Records of the small download: well under one answer.
const SMALL: usize = 1_000;
const PARTITIONS: i32 = 4;

fn main() {
    let records = bench::count(60_000, 3_000);
    let config = broker();
    let big = fresh_topic("bench-download");
    let half = fresh_topic("bench-download-half");
    let small = fresh_topic("bench-download-small");
    eprintln!("producing {records} records of about 1 KB...");
    for (topic, count) in [(&big, records), (&half, records / 2), (&small, SMALL)] {
        ensure_topic(&config, topic, PARTITIONS).expect("topic");
        let per_partition = count / PARTITIONS as usize;
        for partition in 0..PARTITIONS {
            let values: Vec<String> = (0..per_partition)
                .map(|i| format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(1000)))
                .collect();
            produce_to(&config, topic, partition, &values);
        }
    }

    let mut rows = Vec::new();
    for format in ["ndjson", "csv", "parquet"] {
        for (size, topic) in [("small", &small), ("half", &half), ("whole", &big)] {
            rows.push(download(&config.bootstrap_servers, topic, format, size));
        }
    }

    let mib = |kb: u64| kb as f64 / 1024.0;
    println!(
        "\nsluice serve streaming GET /api/search/download of topics of {SMALL}, {} and {records} \
         records of about 1 KB: each download from a server process of its own, its peak RSS \
         (VmHWM) after the download, and its growth over the small download's (the process's \
         fixed cost) in the same format. Memory independent of the file's size: the whole \
         topic's growth about the half topic's (ratio near 1), not twice it\n",
        records / 2
    );
    println!(
        "| format | topic | records | stopped by | file MiB | seconds | peak RSS MiB | growth MiB |"
    );
    println!("|---|---|---:|---|---:|---:|---:|---:|");
    for row in &rows {
        let fixed = rows
            .iter()
            .find(|r| r.format == row.format && r.size == "small")
            .map_or(0, |r| r.peak_kb);
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            row.format,
            row.size,
            row.returned,
            row.stopped_by,
            row.file_bytes as f64 / (1 << 20) as f64,
            row.seconds,
            mib(row.peak_kb),
            mib(row.peak_kb.saturating_sub(fixed))
        );
    }
    println!();
    for format in ["ndjson", "csv", "parquet"] {
        let growth = |size: &str| {
            let fixed = rows
                .iter()
                .find(|r| r.format == format && r.size == "small")
                .map_or(0, |r| r.peak_kb);
            rows.iter()
                .find(|r| r.format == format && r.size == size)
                .map_or(0, |r| r.peak_kb.saturating_sub(fixed))
        };
        println!(
            "{format}: growth of the whole topic's download / the half topic's = {:.2} (the file: 2.00)",
            growth("whole") as f64 / growth("half").max(1) as f64
        );
    }
}

struct Downloaded {
    format: &'static str,
    size: &'static str,
    returned: String,
    stopped_by: String,
    file_bytes: usize,
    seconds: f64,
    peak_kb: u64,
}

/// One download of `topic` as `format` from a `sluice serve` of its own;
/// its peak RSS read once the download is done.
fn download(brokers: &str, topic: &str, format: &'static str, size: &'static str) -> Downloaded {
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--port", &port.to_string()])
        .env("SLUICE_API_KEY", KEY)
        .env("SLUICE_KAFKA_BROKERS", brokers)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sluice serve");
    let started = Instant::now();
    while http::get(port, "/", &[]).is_none_or(|r| r.status != 200) {
        assert!(started.elapsed() < Duration::from_secs(30), "serve started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let path = format!("/api/search/download?topic={topic}&format={format}");
    let began = Instant::now();
    let answer = http::get(port, &path, &[("x-functions-key", KEY)]).expect("an answer");
    let seconds = began.elapsed().as_secs_f64();
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.id()))
        .expect("the server's status");
    let peak_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("the server's VmHWM");
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(answer.status, 200, "{size} {format}: {}", answer.text());
    let summary = summary_of(format, &answer.body).expect("the download's sluice.end");
    Downloaded {
        format,
        size,
        returned: summary["returned"].to_string(),
        stopped_by: summary["stopped_by"].to_string(),
        file_bytes: answer.body.len(),
        seconds,
        peak_kb,
    }
}

/// The download's `sluice.end`: its last JSON line, its last CSV row, or
/// its Parquet file's key-value metadata.
fn summary_of(format: &str, body: &[u8]) -> Option<Value> {
    let text = || String::from_utf8_lossy(body).into_owned();
    let json = |text: &str| serde_json::from_str::<Value>(text).ok();
    match format {
        "ndjson" => json(text().lines().last()?).map(|v| v["sluice.end"].clone()),
        "csv" => {
            let text = text();
            let quoted = text.lines().last()?.strip_prefix(",,,sluice.end,")?;
            json(&quoted.trim_matches('"').replace("\"\"", "\""))
        }
        _ => {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let reader = SerializedFileReader::new(bytes::Bytes::copy_from_slice(body)).ok()?;
            let metadata = reader.metadata().file_metadata().key_value_metadata()?;
            let end = metadata.iter().find(|kv| kv.key == "sluice.end")?;
            json(end.value.as_deref()?)
        }
    }
}
