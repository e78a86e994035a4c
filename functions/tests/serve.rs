//! `sluice serve` as a process: the key settings it refuses at start, and
//! who may run the custom-handler routes (`POST /Export`, `POST /Enrich`)
//! standalone and under the Azure Functions host.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_host::kafka::ensure_topic;
use sluice_tests::http::{self, free_port};
use sluice_tests::{broker, fresh_topic, produce_to};

const ADMIN_KEY: &str = "serve-admin-key-0123456789abcdef0123";
const API_KEY: &str = "serve-data-key-0123456789abcdef01234";

/// Settings from the environment that would change what is tested.
const CLEARED: [&str; 12] = [
    "SLUICE_ADMIN_KEY",
    "SLUICE_API_KEY",
    "SLUICE_METRICS_KEY",
    "SLUICE_AZURE_KEY",
    "SLUICE_AZURE_ACCOUNT",
    "SLUICE_AZURE_ENDPOINT",
    "SLUICE_REGISTRY",
    "SLUICE_PIPELINE",
    "SLUICE_OAUTH_ISSUER",
    "FUNCTIONS_CUSTOMHANDLER_PORT",
    "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
    "AWS_LAMBDA_RUNTIME_API",
];

/// `sluice serve` on a free port over a topics.json of `topics` (exported
/// into `<dir>/out`); killed when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(topics: &[&str], brokers: &str, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Value> = topics
            .iter()
            .map(|t| json!({"topic": t, "group_id": format!("{t}-g"), "reset_offsets": true}))
            .collect();
        std::fs::write(
            dir.path().join("topics.json"),
            Value::from(entries).to_string(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("connections.json"),
            json!({"bootstrap_servers": brokers}).to_string(),
        )
        .unwrap();
        let port = free_port();
        let mut command = sluice(dir.path());
        command
            .args(["serve", "--port", &port.to_string()])
            .env("SLUICE_TOPICS", dir.path().join("topics.json"))
            .env("SLUICE_CONNECTIONS", dir.path().join("connections.json"))
            .env("SLUICE_EXPORT_URL", dir.path().join("out"))
            .env("SLUICE_KAFKA_BROKERS", brokers)
            .env("SLUICE_ADMIN_KEY", ADMIN_KEY)
            .env("SLUICE_API_KEY", API_KEY)
            .envs(env.iter().copied());
        let child = command.spawn().expect("start sluice serve");
        let server = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http::get(port, "/", &[]).is_none() {
            assert!(
                Instant::now() < deadline,
                "sluice serve did not answer:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn post(&self, path: &str, key: Option<&str>) -> http::Response {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(key) = key {
            headers.push(("x-functions-key", key));
        }
        http::request(
            self.port,
            "POST",
            path,
            &headers,
            timer_payload().as_bytes(),
        )
        .expect("sluice serve answers")
    }

    /// The Parquet files the export wrote.
    fn exported(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut dirs = vec![self.dir.path().join("out")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "parquet") {
                    found.push(path);
                }
            }
        }
        found
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice` with the settings of [`CLEARED`] removed, logging to
/// `<dir>/serve.log`.
fn sluice(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    for var in CLEARED {
        command.env_remove(var);
    }
    command
        .env("SLUICE_CACHE_DIR", dir.join("cache"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("serve.log")).unwrap());
    command
}

/// The timer payload the Functions host posts to `/Export`.
fn timer_payload() -> String {
    json!({"Data": {"timer": {"IsPastDue": false}}, "Metadata": {}}).to_string()
}

fn topic_with(records: usize) -> String {
    let topic = fresh_topic("serve-export");
    ensure_topic(&broker(), &topic, 1).unwrap();
    let values: Vec<String> = (0..records).map(|i| format!(r#"{{"i":{i}}}"#)).collect();
    produce_to(&broker(), &topic, 0, &values);
    topic
}

/// What `sluice serve` says when it stops at start with `setting` set to
/// `value` (every other key valid); a failure if it serves instead.
fn refused_at_start(setting: &str, value: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = sluice(dir.path());
    command
        .args(["serve", "--port", &port.to_string()])
        .env("SLUICE_ADMIN_KEY", ADMIN_KEY)
        .env("SLUICE_KAFKA_BROKERS", broker().bootstrap_servers)
        .env(setting, value);
    let mut child = command.spawn().expect("start sluice serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sluice serve started with {setting}={value:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert!(!status.success(), "{setting}={value:?}: {log}");
    assert!(
        log.contains(setting),
        "{setting}={value:?}: the error names the setting: {log}"
    );
    assert!(
        value.trim().is_empty() || !log.contains(value),
        "the key itself is not printed: {log}"
    );
    log
}

/// Empty, blank and one character short of the minimum (32).
const BAD_KEYS: [&str; 3] = ["", " \t ", "0123456789abcdef0123456789abcde"];

#[test]
fn an_empty_blank_or_short_admin_key_is_refused_at_start() {
    for value in BAD_KEYS {
        refused_at_start("SLUICE_ADMIN_KEY", value);
    }
}

#[test]
fn an_empty_blank_or_short_api_key_is_refused_at_start() {
    for value in BAD_KEYS {
        refused_at_start("SLUICE_API_KEY", value);
    }
}

#[test]
fn an_empty_blank_or_short_metrics_key_is_refused_at_start() {
    for value in BAD_KEYS {
        refused_at_start("SLUICE_METRICS_KEY", value);
    }
}

/// The storage account key is Azure's to judge; an empty one is only a
/// setting left blank.
#[test]
fn an_empty_or_blank_azure_storage_key_is_refused_at_start() {
    for value in ["", "  "] {
        refused_at_start("SLUICE_AZURE_KEY", value);
    }
}

#[test]
fn standalone_the_custom_handler_routes_need_the_admin_key() {
    let topic = topic_with(3);
    let server = Server::start(&[&topic], &broker().bootstrap_servers, &[]);
    for (path, key) in [
        ("/Export", None),
        ("/Export", Some(API_KEY)),
        ("/Export", Some("")),
        ("/Enrich", None),
        ("/Enrich", Some(API_KEY)),
    ] {
        let answer = server.post(path, key);
        assert_eq!(answer.status, 401, "{path} with {key:?}: {}", answer.text());
    }
    assert!(server.exported().is_empty(), "no export ran");

    let answer = server.post("/Export", Some(ADMIN_KEY));
    assert_eq!(answer.status, 200, "{}\n{}", answer.text(), server.log());
    assert_eq!(answer.json()["ReturnValue"]["topics"][0]["records"], 3);
    assert_eq!(server.exported().len(), 1);
}

/// A broker that accepts connections and never answers: an export against
/// it runs until the request timeout.
fn tarpit() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    (listener, address)
}

#[test]
fn two_exports_at_once_do_not_run_concurrently() {
    let (_tarpit, brokers) = tarpit();
    let server = Server::start(&["slow-topic"], &brokers, &[]);
    let answers: Vec<http::Response> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..2)
            .map(|_| s.spawn(|| server.post("/Export", Some(ADMIN_KEY))))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort();
    let texts: Vec<String> = answers.iter().map(http::Response::text).collect();
    assert_eq!(statuses, [409, 500], "{texts:?}");
    let refused = answers.iter().find(|a| a.status == 409).unwrap();
    assert!(
        refused.text().contains("already running"),
        "{}",
        refused.text()
    );
}

/// This machine's address on its default route, when it has one that is
/// not loopback.
fn outside_address() -> Option<std::net::IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    // A documentation address (TEST-NET-3): nothing is sent, the route
    // only picks the local address.
    socket.connect("203.0.113.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A POST to `address` (plain HTTP/1.1), the status line's code.
fn post_status(address: SocketAddr, path: &str) -> u16 {
    use std::io::{Read, Write};
    let body = timer_payload();
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn under_the_functions_host_the_triggers_answer_only_the_hosts_own_calls() {
    let topic = topic_with(2);
    let server = Server::start(
        &[&topic],
        &broker().bootstrap_servers,
        &[
            ("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "2b1c2c6e-test-worker"),
            ("SLUICE_LISTEN", "0.0.0.0"),
        ],
    );
    if let Some(ip) = outside_address() {
        let status = post_status(SocketAddr::new(ip, server.port), "/Export");
        assert_eq!(status, 403, "from {ip}, not the host's loopback");
        assert!(server.exported().is_empty());
    } else {
        eprintln!("no address but loopback here: only the host's own calls are tried");
    }
    let answer = server.post("/Export", None);
    assert_eq!(answer.status, 200, "{}\n{}", answer.text(), server.log());
    assert_eq!(answer.json()["ReturnValue"]["topics"][0]["records"], 2);
}
