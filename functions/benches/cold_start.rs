//! Cold start: from exec of `sluice serve` to the first 200 from
//! `/api/fetch`, with three transforms in the registry. Median of 20 starts
//! (3 under `cargo test --all-targets`); the target is 30 ms.
//!
//! `cargo bench -p sluice --bench cold_start` (needs the broker from
//! `scripts/services.sh up` and `scripts/build-guests.sh`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_host::kafka::ensure_topic;
use sluice_host::registry::Registry;
use sluice_host::storage::AzureCredentials;
use sluice_tests::{broker, fresh_topic, guest, produce_to, runtime};

const KEY: &str = "bench-key";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The status code of one GET, or `None` while nothing listens.
fn status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-functions-key: {KEY}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let line = String::from_utf8_lossy(&response);
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let starts = if benchmarking { 20 } else { 3 };
    let dir = tempfile::tempdir().unwrap();
    let registry_dir = dir.path().join("registry");
    let registry =
        Registry::open(registry_dir.to_str().unwrap(), &AzureCredentials::default()).unwrap();
    let io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for name in ["misbehave", "language-detect", "stay-category"] {
        io.block_on(registry.upload(runtime(), name, Bytes::from(guest(name)), true))
            .unwrap();
    }
    let config = broker();
    let topic = fresh_topic("cold");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &[r#"{"id":1}"#.to_owned()]);
    let path = format!("/api/fetch?topic={topic}&count=1");

    let mut times = Vec::new();
    let mut serving = Vec::new();
    for _ in 0..starts {
        let port = free_port();
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--port", &port.to_string()])
            .env("SLUICE_REGISTRY", &registry_dir)
            .env("SLUICE_API_KEY", KEY)
            .env("SLUICE_KAFKA_BROKERS", &config.bootstrap_servers)
            .env("SLUICE_CACHE_DIR", dir.path().join("artifacts"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sluice serve");
        // First the page (the process is up and serving), then the fetch
        // (its first Kafka connection included).
        let listening = loop {
            match status(port, "/") {
                Some(200) => break started.elapsed(),
                Some(other) => panic!("/ answered {other}"),
                None if started.elapsed() > Duration::from_secs(30) => panic!("never answered"),
                None => std::thread::sleep(Duration::from_micros(200)),
            }
        };
        let answered = match status(port, &path) {
            Some(200) => started.elapsed(),
            other => panic!("{path} answered {other:?}"),
        };
        let _ = child.kill();
        let _ = child.wait();
        times.push(answered);
        serving.push(listening);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (i, (t, l)) in times.iter().zip(&serving).enumerate() {
        println!(
            "start {:>2}: serving after {:.1} ms, first 200 from /api/fetch after {:.1} ms",
            i + 1,
            ms(*l),
            ms(*t)
        );
    }
    serving.sort();
    println!(
        "serving (first answer of any route): median {:.1} ms",
        ms(serving[serving.len() / 2])
    );
    times.sort();
    println!(
        "{} cold starts, three transforms in the registry: median {:.1} ms, min {:.1} ms, max {:.1} ms (target 30 ms)",
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
}
