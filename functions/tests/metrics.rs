//! Prometheus metrics of a running `sluice enrich`, scraped over HTTP and
//! parsed by the official Python client's parser: the counts match what
//! the test produced, and the consumer lag falls to 0 once the worker has
//! caught up.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_host::kafka::ensure_topic;
use sluice_tests::{broker, fresh_topic, guests_dir, parse_prometheus, produce_to, read_all};

type Samples = Vec<(String, HashMap<String, String>, f64)>;

fn scrape(port: u16) -> Option<Samples> {
    let answer = sluice_tests::http::request(port, "GET", "/metrics", &[], &[])?;
    (answer.status == 200).then(|| parse_prometheus(&answer.text()))
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .reduce(|a, b| a + b)
}

#[test]
fn a_running_worker_counts_what_it_did_and_its_lag_falls_to_zero() {
    if sluice_tests::python_tools().is_none() {
        eprintln!("skipped: no tool virtualenv (scripts/setup.sh python-tools makes it)");
        return;
    }
    let config = broker();
    let (input, output, dead_letter) = (
        fresh_topic("metrics-in"),
        fresh_topic("metrics-out"),
        fresh_topic("metrics-dlq"),
    );
    for topic in [&input, &output, &dead_letter] {
        ensure_topic(&config, topic, 2).unwrap();
    }
    for partition in 0..2 {
        let mut values: Vec<String> = (0..100).map(|i| json!({"i": i}).to_string()).collect();
        values[7] = "not json".into();
        produce_to(&config, &input, partition, &values);
    }
    let dir = tempfile::tempdir().unwrap();
    let name = fresh_topic("metrics");
    let pipeline = dir.path().join("pipeline.json");
    let definition = json!({
        "name": name, "inputs": [input], "outputs": [output],
        "dead_letter": dead_letter, "transform": "misbehave", "batch_size": 50,
    });
    std::fs::write(&pipeline, definition.to_string()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["enrich", "--pipeline"])
        .arg(&pipeline)
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("SLUICE_TRANSFORMS_DIR", guests_dir())
        .env("SLUICE_KAFKA_BROKERS", &config.bootstrap_servers)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pipeline_label = [("pipeline", name.as_str())];
    let start = Instant::now();
    let samples = loop {
        let samples = scrape(port);
        let done = samples.as_ref().is_some_and(|s| {
            let lag = value(s, "sluice_consumer_lag", &pipeline_label);
            value(
                s,
                "sluice_records_total",
                &[("pipeline", &name), ("outcome", "read")],
            ) == Some(200.0)
                && lag == Some(0.0)
        });
        if done {
            break samples.unwrap_or_default();
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the worker did not catch up: {samples:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = worker.kill();
    let _ = worker.wait();
    let count = |outcome| {
        value(
            &samples,
            "sluice_records_total",
            &[("pipeline", &name), ("outcome", outcome)],
        )
    };
    assert_eq!(count("produced"), Some(198.0));
    assert_eq!(count("dead_lettered"), Some(2.0));
    assert_eq!(read_all(&config, &output).len(), 198);
    let lags: Vec<&(String, HashMap<String, String>, f64)> = samples
        .iter()
        .filter(|(n, l, _)| n == "sluice_consumer_lag" && l.get("pipeline") == Some(&name))
        .collect();
    assert_eq!(lags.len(), 2, "one lag per partition: {lags:?}");
    assert!(
        value(
            &samples,
            "sluice_guest_batch_seconds_count",
            &[("transform", "misbehave")]
        )
        .is_some_and(|n| n >= 4.0),
        "guest calls timed"
    );
}
