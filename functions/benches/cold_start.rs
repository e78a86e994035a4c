//! Cold start: from exec of `sluice serve` to the first 200 from
//! `/api/fetch`, with three transforms in the registry. Median of 20 starts
//! (3 under `cargo test --all-targets`); the target is 30 ms.
//!
//! `cargo bench -p sluice --bench cold_start` (needs the broker from
//! `scripts/services.sh up` and `scripts/build-guests.sh`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_host::kafka::ensure_topic;
use sluice_host::registry::Registry;
use sluice_host::storage::AzureCredentials;
use sluice_tests::http::{self, free_port};
use sluice_tests::{broker, fresh_topic, guest, produce_to, runtime};

const KEY: &str = "bench-key-0123456789abcdef0123456789";

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
            match http::get(port, "/", &[]).map(|r| r.status) {
                Some(200) => break started.elapsed(),
                Some(other) => panic!("/ answered {other}"),
                None if started.elapsed() > Duration::from_secs(30) => panic!("never answered"),
                None => std::thread::sleep(Duration::from_micros(200)),
            }
        };
        let answered = match http::get(port, &path, &[("x-functions-key", KEY)]) {
            Some(r) if r.status == 200 => started.elapsed(),
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
