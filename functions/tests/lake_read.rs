//! Offsets below a partition's earliest through every door: `sluice serve`
//! (`GET /api/fetch`, `GET /api/search`) finds the export from the same
//! topics.json and connections.json its export reads, and `sluice fetch`
//! from `--export-topics`; each record read from the export is marked
//! `"source": "lake"`, and an export storage that does not answer is a 503
//! naming it. The test broker cannot delete records: the binary is told
//! the partition's earliest offset (a failpoint, read only by test
//! builds), as a real cluster answers after retention.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use sluice_host::export::ExportOptions;
use sluice_host::kafka::ensure_topic;
use sluice_host::storage::Storage;
use sluice_tests::app::App;
use sluice_tests::exports::{export, values};
use sluice_tests::{azurite, broker, fresh_topic, produce_to};

const KEY: &str = "lake-read-key-0123456789abcdef012345";

/// A topic of 30 records `{"i": n}` exported to Azurite in files of 10,
/// and the folder holding the topics.json and connections.json that say
/// where (its storage at `endpoint`, Azurite's unless given).
fn exported(endpoint: Option<&str>) -> (String, tempfile::TempDir) {
    let config = broker();
    let topic = fresh_topic("lake-serve");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &values(0, 30));
    let url = sluice_tests::azurite_url("lakeserve", "landing");
    let storage = Storage::open(&url, &azurite::credentials()).unwrap();
    let mut options = ExportOptions::new("run-1");
    options.max_rows_per_file = 10;
    let group = fresh_topic("g");
    export(&config, &topic, &group, json!({}), &storage, &options);
    let dir = tempfile::tempdir().unwrap();
    let azurite_endpoint = azurite::credentials().endpoint.unwrap();
    std::fs::write(
        dir.path().join("topics.json"),
        json!([{"topic": topic, "group_id": group}]).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("connections.json"),
        json!({
            "bootstrap_servers": config.bootstrap_servers,
            "storage_url": url,
            "azure_storage_account_name": azurite::ACCOUNT,
            "azure_storage_account_key": azurite::KEY,
            "azure_storage_endpoint": endpoint.unwrap_or(&azurite_endpoint),
        })
        .to_string(),
    )
    .unwrap();
    (topic, dir)
}

/// Partition 0 of `topic` answers 20 as its earliest offset.
fn deleted_below(topic: &str) -> String {
    format!("kafka::deleted-below=return({topic}/0@20)")
}

fn serve(topic: &str, dir: &Path) -> App {
    let (topics, connections) = (dir.join("topics.json"), dir.join("connections.json"));
    App::start(
        Path::new(env!("CARGO_BIN_EXE_sluice")),
        &[],
        &[
            ("SLUICE_TOPICS", topics.to_str().unwrap()),
            ("SLUICE_CONNECTIONS", connections.to_str().unwrap()),
            ("SLUICE_KAFKA_BROKERS", &broker().bootstrap_servers),
            ("SLUICE_API_KEY", KEY),
            ("FAILPOINTS", &deleted_below(topic)),
        ],
    )
}

/// `(offset, source)` of each record of a JSON answer.
fn sources(records: &Value) -> Vec<(i64, &str)> {
    records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["offset"].as_i64().unwrap(),
                r["source"].as_str().unwrap_or("kafka"),
            )
        })
        .collect()
}

#[test]
fn the_api_and_the_command_line_read_below_the_earliest_from_the_export() {
    let (topic, dir) = exported(None);
    let app = serve(&topic, dir.path());
    let fetched = app.get(
        &format!("/api/fetch?topic={topic}&partition=0&offset=15&count=10"),
        KEY,
    );
    assert_eq!(fetched.status, 200, "{}\n{}", fetched.text(), app.log());
    let body = fetched.json();
    let expected: Vec<(i64, &str)> = (15..25)
        .map(|o| (o, if o < 20 { "lake" } else { "kafka" }))
        .collect();
    assert_eq!(sources(&body["records"]), expected, "{body}");
    assert_eq!(body["records"][0]["value"], json!({"i": 15}));
    assert_eq!(body["missing"], json!([]));
    let found = app.get(
        &format!("/api/search?topic={topic}&where=value.i%20%3C%203%20or%20value.i%20%3E%2026"),
        KEY,
    );
    assert_eq!(found.status, 200, "{}", found.text());
    let body = found.json();
    assert_eq!(
        sources(&body["records"]),
        [
            (0, "lake"),
            (1, "lake"),
            (2, "lake"),
            (27, "kafka"),
            (28, "kafka"),
            (29, "kafka")
        ],
        "{body}"
    );
    assert_eq!(body["scanned"], 30);

    // The command line, from the same files.
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["fetch", "--topic", &topic, "--offset", "18", "--count", "4"])
        .arg("--export-topics")
        .arg(dir.path().join("topics.json"))
        .arg("--export-connections")
        .arg(dir.path().join("connections.json"))
        .env("SLUICE_KAFKA_BROKERS", broker().bootstrap_servers)
        .env("FAILPOINTS", deleted_below(&topic))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        sources(&Value::from(lines)),
        [(18, "lake"), (19, "lake"), (20, "kafka"), (21, "kafka")]
    );
    assert!(stderr.contains("2 of them from the export"), "{stderr}");
}

#[test]
fn an_export_storage_that_does_not_answer_is_a_503_naming_it() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}/{}", azurite::ACCOUNT);
    let (topic, dir) = exported(Some(&endpoint));
    let app = serve(&topic, dir.path());
    let fetched = app.get(
        &format!("/api/fetch?topic={topic}&partition=0&offset=15&count=10"),
        KEY,
    );
    assert_eq!(fetched.status, 503, "{}", fetched.text());
    let text = fetched.text();
    assert!(text.contains("the export's storage `abfss://"), "{text}");
    // Offsets Kafka has are read as always.
    let kafka = app.get(
        &format!("/api/fetch?topic={topic}&partition=0&offset=20&count=3"),
        KEY,
    );
    assert_eq!(kafka.status, 200, "{}", kafka.text());
    assert_eq!(
        sources(&kafka.json()["records"]),
        [(20, "kafka"), (21, "kafka"), (22, "kafka")]
    );
}
