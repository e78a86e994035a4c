//! The topology's health, end to end: a `sluice enrich` worker following a
//! registry stores its heartbeats there, and `sluice serve`'s
//! `/api/topology` shows it alive with what it did and its lag, the topics
//! with the broker's end offsets; stopped cleanly, it shows as stopped;
//! killed, as silent once three beats are missed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_host::enrich::PipelineDefinition;
use sluice_host::kafka::ensure_topic;
use sluice_host::registry::Registry;
use sluice_host::storage::AzureCredentials;
use sluice_tests::http::{free_port, request, wait_until_listening};
use sluice_tests::{broker, fresh_topic, guest, produce_to};

const KEY: &str = "health-admin-key-0123456789abcdef0123";

fn serve(registry: &Path, brokers: &str, port: u16, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--port", &port.to_string()])
        .env("SLUICE_REGISTRY", registry)
        .env("SLUICE_ADMIN_KEY", KEY)
        .env("SLUICE_KAFKA_BROKERS", brokers)
        .env_remove("SLUICE_AZURE_ACCOUNT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start sluice serve")
}

fn worker(registry: &Path, brokers: &str, pipeline: &str, instance: &str, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["enrich", "--name", pipeline, "--heartbeat-ms", "300"])
        .args(["--instance-id", instance])
        .env("SLUICE_REGISTRY", registry)
        .env("SLUICE_KAFKA_BROKERS", brokers)
        .env_remove("SLUICE_AZURE_ACCOUNT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start sluice enrich")
}

fn topology(port: u16) -> Value {
    let answer = request(
        port,
        "GET",
        "/api/topology",
        &[("x-functions-key", KEY)],
        &[],
    )
    .expect("sluice serve answers");
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

/// The graph once `done` holds for the pipeline's instance `instance`, or
/// a failure showing the last graph after `within`.
fn wait_for(
    port: u16,
    pipeline: &str,
    instance: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let graph = topology(port);
        let found = graph["workers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| w["id"] == format!("pipeline:{pipeline}"))
            .flat_map(|w| w["instances"].as_array().cloned().unwrap_or_default())
            .find(|i| i["worker"] == instance);
        if let Some(found) = found
            && done(&found)
        {
            return graph;
        }
        assert!(
            start.elapsed() < within,
            "not in time; the graph: {graph:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn instance<'a>(graph: &'a Value, pipeline: &str, instance: &str) -> &'a Value {
    graph["workers"]
        .as_array()
        .and_then(|workers| {
            workers
                .iter()
                .find(|w| w["id"] == format!("pipeline:{pipeline}"))
        })
        .and_then(|w| w["instances"].as_array())
        .and_then(|instances| instances.iter().find(|i| i["worker"] == instance))
        .unwrap_or_else(|| panic!("{instance} of {pipeline} in {graph:#}"))
}

#[test]
fn the_topology_shows_each_worker_alive_with_its_lag_then_stopped_or_silent() {
    let config = broker();
    let (input, output, dead_letter) = (
        fresh_topic("health-in"),
        fresh_topic("health-out"),
        fresh_topic("health-dlq"),
    );
    for topic in [&input, &output, &dead_letter] {
        ensure_topic(&config, topic, 2).unwrap();
    }
    for partition in 0..2 {
        let mut values: Vec<String> = (0..60).map(|i| json!({"i": i}).to_string()).collect();
        values[3] = "not json".into();
        produce_to(&config, &input, partition, &values);
    }

    let dir = tempfile::tempdir().unwrap();
    let registry_dir = dir.path().join("registry");
    let name = fresh_topic("health");
    let registry = Registry::open(registry_dir.to_str().unwrap(), &AzureCredentials::default())
        .expect("registry");
    let definition = PipelineDefinition::from_value(&json!({
        "name": name, "inputs": [input], "outputs": [output],
        "dead_letter": dead_letter, "transform": "misbehave", "batch_size": 25,
    }))
    .unwrap();
    let runtime = sluice_tests::runtime().clone();
    let wasm = Bytes::from(guest("misbehave"));
    sluice_host::io::wait(async move {
        registry
            .upload(&runtime, "misbehave", wasm, true)
            .await
            .expect("upload");
        registry.put_pipeline(&definition).await.expect("pipeline");
    });

    let port = free_port();
    let mut server = serve(
        &registry_dir,
        &config.bootstrap_servers,
        port,
        &dir.path().join("serve.log"),
    );
    wait_until_listening(port, Duration::from_secs(60), "sluice serve");

    // Running and caught up: alive, everything read, no lag.
    let first_log = dir.path().join("first.log");
    let mut first = worker(
        &registry_dir,
        &config.bootstrap_servers,
        &name,
        "first",
        &first_log,
    );
    let graph = wait_for(port, &name, "first", Duration::from_secs(90), |i| {
        i["liveness"] == "alive" && i["read"] == 120 && i["lag"] == 0
    });
    let alive = instance(&graph, &name, "first");
    assert_eq!(alive["produced"], 118, "{alive}");
    assert_eq!(alive["dead_lettered"], 2, "{alive}");
    assert_eq!(alive["stopped"], false);
    let ends = graph["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == input.as_str())
        .map(|t| t["end_offsets"].clone());
    assert_eq!(ends, Some(json!([60, 60])), "the input's end offsets");

    // Stopped cleanly (SIGTERM): its last beat says so.
    let pid = first.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = first.wait().unwrap();
    let log = std::fs::read_to_string(&first_log).unwrap_or_default();
    assert!(status.success(), "the worker stopped with {status}:\n{log}");
    let graph = topology(port);
    assert_eq!(
        instance(&graph, &name, "first")["liveness"],
        "stopped",
        "{graph:#}\nthe worker's log:\n{log}"
    );

    // Killed: silent once three beats (0.9 s) are missed.
    let mut second = worker(
        &registry_dir,
        &config.bootstrap_servers,
        &name,
        "second",
        &dir.path().join("second.log"),
    );
    wait_for(port, &name, "second", Duration::from_secs(90), |i| {
        i["liveness"] == "alive"
    });
    second.kill().unwrap();
    second.wait().unwrap();
    wait_for(port, &name, "second", Duration::from_secs(10), |i| {
        i["liveness"] == "silent"
    });
    let _ = server.kill();
    let _ = server.wait();
}
