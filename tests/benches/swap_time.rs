//! Hot-swap time: from the start of an upload request (with activation) to
//! the first output record stamped with the new version, while a worker
//! processes a continuous stream. Median of 10 swaps, alternating between
//! two components; the target is 3 s.
//!
//! `cargo bench -p sluice-tests --bench swap_time` (needs the broker from
//! `scripts/services.sh up` and `scripts/build-guests.sh`). Under
//! `cargo test --all-targets` it makes two swaps as a check.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use sluice_host::enrich::{PipelineDefinition, TransformRef};
use sluice_host::kafka::{GroupConsumer, GroupStart, ProduceRecord, Producer, ensure_topic};
use sluice_host::pipeline::header;
use sluice_host::registry::{Registry, TransformWatch};
use sluice_host::runtime::{Runtime, RuntimeConfig};
use sluice_host::storage::AzureCredentials;
use sluice_tests::{EnrichWorker, broker, fresh_topic, guest};

/// How often the worker looks at the registry: `sluice enrich`'s default.
const POLL: Duration = Duration::from_millis(500);

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let swaps = if benchmarking { 10 } else { 2 };
    let io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // As deployed: one artifact cache, so the worker loads what the upload
    // already compiled.
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().join("artifacts")),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let registry = Arc::new(
        Registry::open(
            dir.path().join("registry").to_str().unwrap(),
            &AzureCredentials::default(),
        )
        .unwrap(),
    );
    let components = [
        Bytes::from(guest("misbehave")),
        Bytes::from(guest("language-detect")),
    ];
    io.block_on(registry.upload(&runtime, "swap", components[0].clone(), true))
        .unwrap();

    let config = broker();
    let (input, output, dead_letter) = (
        fresh_topic("swap-in"),
        fresh_topic("swap-out"),
        fresh_topic("swap-dlq"),
    );
    for topic in [&input, &output, &dead_letter] {
        ensure_topic(&config, topic, 1).unwrap();
    }
    let definition = PipelineDefinition::from_value(&json!({
        "name": fresh_topic("swap"), "inputs": [input], "outputs": [output],
        "dead_letter": dead_letter, "transform": "swap", "batch_size": 100,
    }))
    .unwrap();
    let transform = io
        .block_on(registry.resolve(&runtime, &TransformRef::Active("swap".into())))
        .unwrap();
    let watch = TransformWatch::spawn(
        registry.clone(),
        runtime.clone(),
        "swap".into(),
        transform.version().to_owned(),
        POLL,
    );
    let worker = EnrichWorker::start(&definition, transform, Some(watch));

    // A steady stream: 50 records every 20 ms.
    let streaming = Arc::new(AtomicBool::new(true));
    let producer_thread = {
        let (config, input, streaming) = (config.clone(), input.clone(), streaming.clone());
        std::thread::spawn(move || {
            let producer = Producer::new(&config).unwrap();
            let mut id = 0u64;
            while streaming.load(Ordering::SeqCst) {
                let records: Vec<ProduceRecord> = (0..50)
                    .map(|_| {
                        id += 1;
                        ProduceRecord {
                            timestamp: None,
                            topic: input.clone(),
                            partition: Some(0),
                            key: None,
                            value: Some(json!({"id": id, "content": {"text": "a steady stream of english words"}}).to_string().into_bytes()),
                            headers: Vec::new(),
                        }
                    })
                    .collect();
                producer.send_all(&records).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut reader = GroupConsumer::subscribe(
        &config,
        &fresh_topic("swap-reader"),
        std::slice::from_ref(&output),
        GroupStart::Latest,
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));

    let mut times = Vec::new();
    for swap in 0..swaps {
        let wasm = components[(swap + 1) % 2].clone();
        let started = Instant::now();
        let version = io
            .block_on(registry.upload(&runtime, "swap", wasm, true))
            .unwrap()
            .info
            .version;
        let uploaded = started.elapsed();
        let stamp = format!("swap@{}", &version[..12]);
        let seen = loop {
            let polled = reader.poll(1000, Duration::from_millis(20));
            let found = polled.records.iter().any(|r| {
                r.headers.iter().any(|h| {
                    h.key == header::TRANSFORM && h.value.as_deref() == Some(stamp.as_bytes())
                })
            });
            if found {
                break started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "swap {swap} never seen"
            );
        };
        println!(
            "swap {:>2}: upload {:>6.0} ms, first new record after {:>6.0} ms",
            swap + 1,
            uploaded.as_secs_f64() * 1e3,
            seen.as_secs_f64() * 1e3
        );
        times.push(seen);
        std::thread::sleep(Duration::from_millis(300));
    }
    streaming.store(false, Ordering::SeqCst);
    producer_thread.join().unwrap();
    let stats = worker.stop();
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{} swaps while streaming ({} records processed): median {:.0} ms, max {:.0} ms (target 3000 ms, registry polled every {} ms)",
        times.len(),
        stats.read,
        median.as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        POLL.as_millis()
    );
}
