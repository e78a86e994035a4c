//! `sluice import` killed with SIGKILL mid-import (no unwinding, no
//! release of its lease), then started again: the second run waits for the
//! dead run's lease to expire, takes it over, and the topic ends up with
//! every row of every file, the rows of the chunk in flight at the kill at
//! most twice (the documented repeat window), found by the
//! `sluice.import.file` and `sluice.import.row` headers. On a local folder
//! and on Azurite.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sluice_host::import::{FILE_HEADER, ROW_HEADER, lease_key, progress_key};
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_tests::{azurite, azurite_url, broker, fresh_topic, header_text, read_all};

/// Rows per file: enough that the import is still running when killed.
const ROWS: u64 = 30_000;
const FILES: [&str; 2] = ["a.jsonl", "b.jsonl"];
/// `--chunk-rows`: what a crash may repeat.
const CHUNK: u64 = 1_000;
/// `--lease-seconds`, shortened from the default 30.
const LEASE_SECONDS: u64 = 3;

fn lines(file: &str) -> Vec<u8> {
    (0..ROWS)
        .map(|i| format!("{}\n", json!({"file": file, "n": i, "pad": "x".repeat(40)})))
        .collect::<String>()
        .into_bytes()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn sluice_import(url: &str, topic: &str, credentials: &AzureCredentials, log: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(["import", "--from", url, "--topic", topic])
        .args(["--chunk-rows", &CHUNK.to_string()])
        .args(["--lease-seconds", &LEASE_SECONDS.to_string()])
        .env("SLUICE_KAFKA_BROKERS", &broker().bootstrap_servers)
        .env(
            "SLUICE_AZURE_ACCOUNT",
            credentials.account.clone().unwrap_or_default(),
        )
        .env(
            "SLUICE_AZURE_KEY",
            credentials.key.clone().unwrap_or_default(),
        )
        .env(
            "SLUICE_AZURE_ENDPOINT",
            credentials.endpoint.clone().unwrap_or_default(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    command
}

fn killed_then_taken_over(url: &str, credentials: &AzureCredentials) {
    let storage = Storage::open(url, credentials).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let topic = fresh_topic("import-kill");
    let json = |key: &str| -> Option<Value> {
        storage
            .get_if_exists(key)
            .unwrap()
            .map(|bytes| serde_json::from_slice(&bytes).unwrap())
    };

    // Killed once the first file is partly recorded.
    let first_log = logs.path().join("first.log");
    let mut first = sluice_import(url, &topic, credentials, &first_log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let progress = json(&progress_key(&topic));
        let rows = progress
            .as_ref()
            .map_or(0, |p| p["files"][FILES[0]]["rows"].as_u64().unwrap_or(0));
        if rows > 0 {
            break;
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "the import ended before it was killed: {}",
            std::fs::read_to_string(&first_log).unwrap()
        );
        assert!(Instant::now() < deadline, "no progress recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let recorded = json(&progress_key(&topic)).unwrap();
    let recorded_rows = recorded["files"][FILES[0]]["rows"].as_u64().unwrap();
    assert_eq!(
        recorded["files"][FILES[0]]["done"], false,
        "killed mid-file"
    );
    let dead = json(&lease_key(&topic)).expect("the killed import's lease is left");
    let dead_owner = dead["owner"].as_str().expect("held").to_owned();
    let expires_at_ms = dead["expires_at_ms"].as_u64().unwrap();

    // Started again at once: it waits out the dead lease, then imports.
    // The lease file is watched meanwhile for the moment it changes hands.
    let second_log = logs.path().join("second.log");
    let (started, restarted_ms) = (Instant::now(), now_ms());
    let mut second = sluice_import(url, &topic, credentials, &second_log)
        .spawn()
        .unwrap();
    let taken_over_ms = loop {
        let holder = json(&lease_key(&topic)).unwrap();
        if holder["owner"] != dead_owner.as_str() {
            break now_ms();
        }
        assert!(Instant::now() < deadline, "never taken over");
        std::thread::sleep(Duration::from_millis(10));
    };
    let second = second.wait().unwrap();
    let log = std::fs::read_to_string(&second_log).unwrap();
    assert!(second.success(), "the second run failed: {log}");
    assert!(
        taken_over_ms >= expires_at_ms,
        "taken over {} ms before the dead lease expired",
        expires_at_ms - taken_over_ms
    );
    assert!(
        taken_over_ms - restarted_ms < (LEASE_SECONDS + 5) * 1000,
        "taken over in well under a minute: {} ms",
        taken_over_ms - restarted_ms
    );
    if restarted_ms + 100 < expires_at_ms {
        assert!(log.contains("waiting to see it renewed"), "{log}");
    }
    assert!(log.contains("took over the lease"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(
        json(&lease_key(&topic)).unwrap()["owner"],
        Value::Null,
        "released at the end"
    );

    // Every row, each once but for the chunk in flight at the kill.
    let mut seen: BTreeMap<(String, u64), u32> = BTreeMap::new();
    for record in read_all(&broker(), &topic) {
        let row = header_text(&record, ROW_HEADER).parse().unwrap();
        *seen
            .entry((header_text(&record, FILE_HEADER).to_owned(), row))
            .or_default() += 1;
    }
    for file in FILES {
        let missing: Vec<u64> = (0..ROWS)
            .filter(|row| !seen.contains_key(&(file.to_owned(), *row)))
            .collect();
        assert!(missing.is_empty(), "{file}: rows missing: {missing:?}");
    }
    let repeated: Vec<&(String, u64)> = seen
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(row, _)| row)
        .collect();
    assert!(
        seen.values().all(|count| *count <= 2),
        "no row more than twice"
    );
    assert!(
        repeated
            .iter()
            .all(|(file, row)| file == FILES[0]
                && (recorded_rows..recorded_rows + CHUNK).contains(row)),
        "only the chunk after the last recorded one ({recorded_rows}) repeats: {} repeated",
        repeated.len()
    );
    eprintln!(
        "{url}: killed with {recorded_rows} rows of {} recorded; taken over {} ms after the \
         restart, {} ms after the dead lease expired; {} rows repeated",
        FILES[0],
        taken_over_ms - restarted_ms,
        taken_over_ms - expires_at_ms,
        repeated.len()
    );
    let progress = json(&progress_key(&topic)).unwrap();
    for file in FILES {
        assert_eq!(progress["files"][file]["rows"], ROWS);
        assert_eq!(progress["files"][file]["done"], true);
    }
}

#[test]
fn a_killed_import_of_a_local_folder_is_taken_over_after_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    for file in FILES {
        std::fs::write(dir.path().join(file), lines(file)).unwrap();
    }
    killed_then_taken_over(dir.path().to_str().unwrap(), &AzureCredentials::default());
}

#[test]
fn a_killed_import_from_azure_is_taken_over_after_its_lease() {
    let url = azurite_url("import-kill", "landing");
    let credentials = azurite::credentials();
    let storage = Storage::open(&url, &credentials).unwrap();
    let staging = tempfile::tempdir().unwrap();
    for file in FILES {
        let local = staging.path().join(file);
        std::fs::write(&local, lines(file)).unwrap();
        storage.upload(&local, file).unwrap();
    }
    killed_then_taken_over(&url, &credentials);
}
