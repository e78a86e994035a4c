//! `sluice enrich` killed with SIGKILL in the middle of a stream, again and
//! again: at-least-once means every input id reaches the output, none is
//! missing, whatever the moment of the kill.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_host::kafka::{ProduceRecord, Producer, ensure_topic};
use sluice_tests::{broker, fresh_topic, guests_dir, read_all};

fn start_worker(pipeline: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["enrich", "--pipeline"])
        .arg(pipeline)
        .env("SLUICE_TRANSFORMS_DIR", guests_dir())
        .env("SLUICE_KAFKA_BROKERS", broker().bootstrap_servers)
        // A short session, so that the group gives a killed worker's
        // partitions to the next one soon.
        .env(
            "SLUICE_KAFKA_PROPERTIES",
            "session.timeout.ms=3000,heartbeat.interval.ms=500",
        )
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start sluice enrich")
}

fn ids_in(topic: &str) -> HashSet<u64> {
    read_all(&broker(), topic)
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(r.value.as_deref()?).ok())
        .filter_map(|v| v["id"].as_u64())
        .collect()
}

#[test]
fn sigkill_mid_stream_loses_nothing() {
    const TOTAL: u64 = 6000;
    let config = broker();
    let input = fresh_topic("crash-in");
    let output = fresh_topic("crash-out");
    let dead_letter = fresh_topic("crash-dlq");
    for topic in [&input, &output, &dead_letter] {
        ensure_topic(&config, topic, 3).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("pipeline.json");
    let definition = json!({
        "name": fresh_topic("crash"),
        "inputs": [input], "outputs": [output], "dead_letter": dead_letter,
        "transform": "misbehave", "batch_size": 50,
    });
    std::fs::write(&pipeline, definition.to_string()).unwrap();

    // The stream: 6000 ids produced in 60 slices over about 25 s while
    // workers come and go.
    let producing = {
        let (config, input) = (config.clone(), input.clone());
        std::thread::spawn(move || {
            let producer = Producer::new(&config).unwrap();
            for slice in 0..60 {
                let records: Vec<ProduceRecord> = (slice * 100..(slice + 1) * 100)
                    .map(|id| ProduceRecord {
                        timestamp: None,
                        topic: input.clone(),
                        partition: Some(id % 3),
                        key: None,
                        value: Some(json!({"id": id}).to_string().into_bytes()),
                        headers: Vec::new(),
                    })
                    .collect();
                producer.send_all(&records).unwrap();
                std::thread::sleep(Duration::from_millis(400));
            }
        })
    };

    let mut kills = 0;
    for round in 0..4 {
        let mut worker = start_worker(&pipeline, &dir.path().join(format!("worker-{round}.log")));
        // Kill at a different moment each round, some mid-batch.
        std::thread::sleep(Duration::from_millis(1500 + 700 * round));
        worker.kill().expect("SIGKILL the worker");
        worker.wait().unwrap();
        kills += 1;
        // The group reassigns a dead member's partitions when its session
        // has expired and someone joins (tansu checks only then).
        std::thread::sleep(Duration::from_millis(3500));
    }
    producing.join().unwrap();
    let before_last = ids_in(&output).len();
    assert!(
        before_last > 0,
        "the killed workers made progress before dying"
    );

    let last = start_worker(&pipeline, &dir.path().join("worker-last.log"));
    let start = Instant::now();
    let mut seen = ids_in(&output);
    while (seen.len() as u64) < TOTAL && start.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(500));
        seen = ids_in(&output);
    }
    // A graceful stop: SIGTERM, exit 0, with a summary on stdout.
    let pid = last.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let finished = last.wait_with_output().unwrap();
    assert!(
        finished.status.success(),
        "worker exit: {:?}",
        finished.status
    );
    let summary = String::from_utf8_lossy(&finished.stdout);
    assert!(summary.contains("read"), "summary: {summary}");

    let missing: Vec<u64> = (0..TOTAL).filter(|id| !seen.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} ids missing after {kills} kills (first: {:?}); logs in {}",
        missing.len(),
        &missing[..missing.len().min(10)],
        dir.keep().display()
    );
    assert!(read_all(&config, &dead_letter).is_empty());
    let produced = read_all(&config, &output).len();
    eprintln!(
        "{kills} kills; {before_last} ids out before the last worker; \
         {produced} records out for {TOTAL} ids ({} duplicates)",
        produced as u64 - TOTAL
    );
}
