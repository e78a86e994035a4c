//! The AWS Lambda path under `cargo lambda watch --only-lambda-apis`: the
//! Lambda Runtime API emulator of PyPI's `cargo-lambda` (installed by
//! `scripts/setup.sh`), bound to 127.0.0.1. `sluice` runs as the Lambda
//! bootstrap (no arguments, `AWS_LAMBDA_RUNTIME_API` pointing at the
//! emulator) and is invoked two ways:
//! - the Invoke API with API Gateway v2 (HTTP API, payload 2.0) events, as AWS
//!   documents them, answered with API Gateway v2 responses;
//! - plain HTTP through the emulator's function URL, which turns a request
//!   into the same kind of event and the answer back into HTTP;
//! - the Invoke API with an EventBridge scheduled event, the one way the
//!   export runs on Lambda.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_host::kafka::ensure_topic;
use sluice_tests::http::{self, free_port};
use sluice_tests::{broker, fresh_topic, guests_dir, produce_to};

const KEY: &str = "lambda-data-key-0123456789abcdef0123";
const ADMIN_KEY: &str = "lambda-admin-key-0123456789abcdef012";
/// The function name `cargo lambda watch --only-lambda-apis` asks the
/// function to run as.
const FUNCTION: &str = "_";

/// An API Gateway HTTP API (payload 2.0) event.
fn event(method: &str, path: &str, query: &str, key: Option<&str>, body: Option<&str>) -> Value {
    let mut headers =
        json!({"host": "abc.execute-api.eu-west-1.amazonaws.com", "user-agent": "test"});
    if let Some(key) = key {
        headers["x-functions-key"] = json!(key);
    }
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:02:00:00 +0000",
            "timeEpoch": 1_795_312_800_000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

fn cargo_lambda() -> PathBuf {
    let path = std::env::var_os("SLUICE_CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("SLUICE_CACHE").map_or_else(
                || {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/sluice")
                },
                PathBuf::from,
            );
            cache.join("cargo-lambda/bin/cargo-lambda")
        });
    assert!(
        path.exists(),
        "{} is missing: scripts/setup.sh installs cargo-lambda (or set SLUICE_CARGO_LAMBDA)",
        path.display()
    );
    path
}

/// A process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The emulator and `sluice` running as a function under it.
struct LambdaUnderEmulator {
    port: u16,
    _function: Killed,
    _emulator: Killed,
}

impl LambdaUnderEmulator {
    fn start(brokers: &str) -> LambdaUnderEmulator {
        Self::start_with(brokers, &[])
    }

    /// As [`Self::start`], with more settings for the function.
    fn start_with(brokers: &str, settings: &[(&str, &std::ffi::OsStr)]) -> LambdaUnderEmulator {
        let port = free_port();
        let emulator = Command::new(cargo_lambda())
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address"])
            .args(["127.0.0.1", "--invoke-port", &port.to_string()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cargo lambda watch");
        let emulator = Killed(emulator);
        // It answers nothing but invocations, and holds those until a
        // function asks for them.
        http::wait_until_listening(port, Duration::from_secs(60), "cargo lambda watch");
        let function = Command::new(env!("CARGO_BIN_EXE_sluice"))
            // What `cargo lambda watch --only-lambda-apis` says a function
            // started outside it must have.
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
            .env("SLUICE_API_KEY", KEY)
            .env("SLUICE_KAFKA_BROKERS", brokers)
            .env("SLUICE_TRANSFORMS_DIR", guests_dir())
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sluice as a Lambda bootstrap");
        LambdaUnderEmulator {
            port,
            _function: Killed(function),
            _emulator: emulator,
        }
    }

    /// The Invoke API: the event in, the function's answer out.
    fn invoke(&self, event: &Value) -> Value {
        let response = self.invoke_raw(event);
        assert_eq!(response.status, 200, "invoke: {}", response.text());
        response.json()
    }

    /// The Invoke API's answer as it came.
    fn invoke_raw(&self, event: &Value) -> http::Response {
        http::request(
            self.port,
            "POST",
            &format!("/2015-03-31/functions/{FUNCTION}/invocations"),
            &[("content-type", "application/json")],
            event.to_string().as_bytes(),
        )
        .expect("the emulator answers")
    }

    /// The function URL: a plain HTTP request with the data key.
    fn url(&self, method: &str, path: &str, body: &[u8]) -> http::Response {
        self.url_with(method, path, Some(KEY), body)
    }

    /// The function URL with `key` (none: anonymous).
    fn url_with(&self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> http::Response {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(key) = key {
            headers.push(("x-functions-key", key));
        }
        http::request(
            self.port,
            method,
            &format!("/lambda-url/{FUNCTION}{path}"),
            &headers,
            body,
        )
        .expect("the emulator answers")
    }
}

/// The JSON body of an API Gateway v2 response.
fn body_json(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().expect("a text body"))
        .unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[test]
fn api_gateway_v2_events_and_function_urls_reach_the_same_router() {
    let config = broker();
    let topic = fresh_topic("lambda");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(
        &config,
        &topic,
        0,
        &[
            r#"{"id":1}"#.to_owned(),
            r#"{"id":2,"note":"a, b"}"#.to_owned(),
        ],
    );
    let lambda = LambdaUnderEmulator::start(&config.bootstrap_servers);

    let fetched = lambda.invoke(&event(
        "GET",
        "/api/fetch",
        &format!("topic={topic}&count=5"),
        Some(KEY),
        None,
    ));
    assert_eq!(fetched["statusCode"], 200, "{fetched}");
    let body = body_json(&fetched);
    assert_eq!(body["returned"], 2, "{body}");
    assert_eq!(
        body["records"][1]["value"],
        json!({"id": 2, "note": "a, b"})
    );

    let unknown = lambda.invoke(&event(
        "GET",
        "/api/fetch",
        "topic=no-such-topic-here",
        Some(KEY),
        None,
    ));
    assert_eq!(unknown["statusCode"], 404, "{unknown}");

    let no_key = lambda.invoke(&event(
        "GET",
        "/api/fetch",
        &format!("topic={topic}"),
        None,
        None,
    ));
    assert_eq!(
        no_key["statusCode"], 401,
        "the key is checked on Lambda too"
    );

    let invoked = lambda.invoke(&event(
        "POST",
        "/api/transforms/misbehave/invoke",
        "",
        Some(KEY),
        Some(r#"[{"i":1},{"do":"drop"}]"#),
    ));
    assert_eq!(invoked["statusCode"], 200, "{invoked}");
    assert_eq!(
        body_json(&invoked)["outcomes"],
        json!([{"emit": [{"topic": null, "value": {"i": 1}}]}, {"drop": true}])
    );

    let page = lambda.invoke(&event("GET", "/", "", None, None));
    assert_eq!(page["statusCode"], 200);
    assert!(page["body"].as_str().unwrap().contains("Fetch records"));

    let csv = lambda.url(
        "GET",
        &format!("/api/fetch?topic={topic}&count=5&format=csv"),
        &[],
    );
    assert_eq!(csv.status, 200, "{}", csv.text());
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let rows: Vec<String> = csv.text().lines().map(str::to_owned).collect();
    assert_eq!(rows[0], "partition,offset,timestamp,key,value");
    assert!(
        rows[2].ends_with(r#","{""id"":2,""note"":""a, b""}""#),
        "{rows:?}"
    );

    let posted = lambda.url(
        "POST",
        "/api/transforms/misbehave/invoke",
        br#"{"do":"fail","reason":"bad"}"#,
    );
    assert_eq!(posted.status, 200, "{}", posted.text());
    assert_eq!(posted.json()["outcomes"], json!([{"fail": "bad"}]));
}

/// An EventBridge scheduled event, as a rule with a schedule expression
/// delivers it.
fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-22T02:00:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/sluice-export"],
        "detail": {}
    })
}

/// The export's Parquet files under `dir`.
fn parquet_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
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

#[test]
fn the_export_runs_as_a_scheduled_event_and_never_through_the_function_url() {
    let config = broker();
    let topic = fresh_topic("lambda-export");
    ensure_topic(&config, &topic, 1).unwrap();
    produce_to(&config, &topic, 0, &[r#"{"id":1}"#, r#"{"id":2}"#]);
    let dir = tempfile::tempdir().unwrap();
    let (topics, connections, out) = (
        dir.path().join("topics.json"),
        dir.path().join("connections.json"),
        dir.path().join("out"),
    );
    std::fs::write(
        &topics,
        json!([{"topic": topic, "group_id": format!("{topic}-g"), "reset_offsets": true}])
            .to_string(),
    )
    .unwrap();
    std::fs::write(
        &connections,
        json!({"bootstrap_servers": config.bootstrap_servers}).to_string(),
    )
    .unwrap();
    let lambda = LambdaUnderEmulator::start_with(
        &config.bootstrap_servers,
        &[
            ("SLUICE_ADMIN_KEY", ADMIN_KEY.as_ref()),
            ("SLUICE_TOPICS", topics.as_os_str()),
            ("SLUICE_CONNECTIONS", connections.as_os_str()),
            ("SLUICE_EXPORT_URL", out.as_os_str()),
        ],
    );
    let timer = json!({"Data": {"timer": {"IsPastDue": false}}, "Metadata": {}}).to_string();

    // Through the function URL: refused whatever the key.
    for path in ["/Export", "/Enrich", "/events"] {
        for key in [None, Some(KEY), Some(ADMIN_KEY)] {
            let answer = lambda.url_with("POST", path, key, timer.as_bytes());
            assert_eq!(answer.status, 403, "{path} with {key:?}: {}", answer.text());
        }
    }
    // As an API Gateway event through the Invoke API: the same.
    let gateway = lambda.invoke(&event("POST", "/Export", "", Some(ADMIN_KEY), Some(&timer)));
    assert_eq!(gateway["statusCode"], 403, "{gateway}");
    assert!(parquet_files(&out).is_empty(), "no export ran");

    // As a scheduled event: the export.
    let ran = lambda.invoke(&scheduled_event());
    assert_eq!(ran["ReturnValue"]["topics"][0]["status"], "ok", "{ran}");
    assert_eq!(ran["ReturnValue"]["topics"][0]["records"], 2, "{ran}");
    assert_eq!(parquet_files(&out).len(), 1);

    // Another event that is not a schedule's is refused, and says so.
    let mut other = scheduled_event();
    other["detail-type"] = json!("EC2 Instance State-change Notification");
    other["source"] = json!("aws.ec2");
    let refused = lambda.invoke_raw(&other);
    assert!(
        refused.text().contains("Scheduled Event"),
        "{}",
        refused.text()
    );
}
