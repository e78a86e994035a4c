//! The broker crashes and comes back while `sluice enrich` runs: the
//! worker rides it out (librdkafka reconnects, unacknowledged produces are
//! retried by the idempotent producer, commits resume) and every record
//! reaches the output. Runs against a broker of its own, which it kills.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_host::kafka::{KafkaConfig, ProduceRecord, Producer, ensure_topic};
use sluice_tests::{PrivateBroker, fresh_topic, guests_dir, read_all};

fn produce_retrying(config: &KafkaConfig, records: &[ProduceRecord]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Producer::new(config).and_then(|p| p.send_all(records)) {
            Ok(()) => return,
            Err(error) => {
                assert!(Instant::now() < deadline, "producing: {error}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

fn ids_in(config: &KafkaConfig, topic: &str) -> HashSet<u64> {
    read_all(config, topic)
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(r.value.as_deref()?).ok())
        .filter_map(|v| v["id"].as_u64())
        .collect()
}

#[test]
fn a_broker_restart_mid_stream_loses_nothing() {
    const TOTAL: u64 = 2000;
    let mut broker = PrivateBroker::start();
    let config = broker.config();
    let (input, output, dead_letter) = (
        fresh_topic("restart-in"),
        fresh_topic("restart-out"),
        fresh_topic("restart-dlq"),
    );
    for topic in [&input, &output, &dead_letter] {
        ensure_topic(&config, topic, 2).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("pipeline.json");
    let definition = json!({
        "name": fresh_topic("restart"), "inputs": [input], "outputs": [output],
        "dead_letter": dead_letter, "transform": "misbehave", "batch_size": 100,
    });
    std::fs::write(&pipeline, definition.to_string()).unwrap();
    let batch = |from: u64, to: u64| -> Vec<ProduceRecord> {
        (from..to)
            .map(|id| ProduceRecord {
                timestamp: None,
                topic: input.clone(),
                partition: Some((id % 2) as i32),
                key: None,
                value: Some(json!({"id": id}).to_string().into_bytes()),
                headers: Vec::new(),
            })
            .collect()
    };
    produce_retrying(&config, &batch(0, TOTAL / 2));
    let log = std::fs::File::create(dir.path().join("worker.log")).unwrap();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["enrich", "--pipeline"])
        .arg(&pipeline)
        .env("SLUICE_TRANSFORMS_DIR", guests_dir())
        .env("SLUICE_KAFKA_BROKERS", &config.bootstrap_servers)
        .env(
            "SLUICE_KAFKA_PROPERTIES",
            "session.timeout.ms=6000,heartbeat.interval.ms=500",
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start sluice enrich");
    // Some of the first half is out; then the broker dies for 3 s.
    let start = Instant::now();
    while ids_in(&config, &output).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(200));
    }
    broker.kill();
    std::thread::sleep(Duration::from_secs(3));
    broker.launch();
    produce_retrying(&config, &batch(TOTAL / 2, TOTAL));
    let start = Instant::now();
    let mut seen = ids_in(&config, &output);
    while (seen.len() as u64) < TOTAL && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(500));
        seen = ids_in(&config, &output);
    }
    let _ = worker.kill();
    let _ = worker.wait();
    let missing: Vec<u64> = (0..TOTAL).filter(|id| !seen.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} ids missing after the restart (first {:?}); worker log in {}",
        missing.len(),
        missing.first(),
        dir.keep().display()
    );
    assert!(read_all(&config, &dead_letter).is_empty());
}
