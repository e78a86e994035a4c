//! The timer payloads Microsoft documents for custom handlers, posted to
//! the router in-process (the Functions host itself cannot run here),
//! against the real broker.
// Helpers the broker-backed tests use, idle without the feature.
#![cfg_attr(not(feature = "integration-tests"), allow(dead_code))]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sluice_host::kafka::ensure_topic;
use sluice_tests::{broker, fresh_topic, produce_to};
use tower::ServiceExt;

use super::{Access, AccessKey, AppConfig, PayloadLimit, router};

mod admin;
mod browser;
// Against the broker `scripts/services.sh up` starts: with
// `--features integration-tests`, as scripts/test.sh runs.
#[cfg(feature = "integration-tests")]
mod data;
#[cfg(feature = "integration-tests")]
mod download;
#[cfg(feature = "integration-tests")]
mod enrich;
#[cfg(feature = "integration-tests")]
mod fuzz;
mod oauth;
mod openapi;
#[cfg(feature = "integration-tests")]
mod page;
#[cfg(feature = "integration-tests")]
mod search;
#[cfg(feature = "integration-tests")]
mod topics;

/// The admin key of the apps built here; [`call`] sends it.
pub const ADMIN_KEY: &str = "tests-admin-key-0123456789abcdef0123";

/// `value` as a configured key.
pub fn key(value: &str) -> AccessKey {
    AccessKey::new("test key", value).unwrap()
}

/// Standalone access with `admin` as the admin key (and so the key of
/// every route, as `app.rs` resolves it).
pub fn access(admin: &str) -> std::sync::Arc<Access> {
    std::sync::Arc::new(Access {
        admin_key: Some(key(admin)),
        data_key: Some(key(admin)),
        metrics_key: Some(key(admin)),
        ..Access::default()
    })
}

struct App {
    dir: tempfile::TempDir,
    config: AppConfig,
}

/// A function app whose topics.json lists `topics` (each reset to earliest).
fn app(topics: &[&str]) -> App {
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
    let connections = json!({"bootstrap_servers": broker().bootstrap_servers});
    std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();
    let config = AppConfig {
        topics: dir.path().join("topics.json"),
        connections: dir.path().join("connections.json"),
        out: Some(dir.path().join("out").to_string_lossy().into_owned()),
        enrich: None,
        admin: None,
        data: None,
        transforms: folder_transforms(),
        metrics: None,
        access: access(ADMIN_KEY),
        payload_limit: PayloadLimit::built_in(),
    };
    App { dir, config }
}

/// An app serving the data API (fetch, search, topics, downloads) from the
/// test broker within `limits`, behind the key `key`.
fn data_app(key: &str, limits: sluice_host::fetch::FetchLimits) -> AppConfig {
    AppConfig {
        topics: "topics.json".into(),
        connections: "connections.json".into(),
        out: None,
        enrich: None,
        admin: None,
        data: Some(std::sync::Arc::new(super::data::DataApi {
            readers: std::sync::Arc::new(sluice_host::fetch::reader_pool(broker())),
            limits,
            transforms: folder_transforms(),
            schema_registry: None,
            lake: None,
        })),
        transforms: folder_transforms(),
        metrics: None,
        access: access(key),
        payload_limit: PayloadLimit::built_in(),
    }
}

/// `GET uri` with `key` in the Functions key header.
async fn get_with_key(app: &AppConfig, key: &str, uri: &str) -> Answered {
    let request = Request::get(uri)
        .header("x-functions-key", key)
        .body(Body::empty())
        .unwrap();
    answer(app, request).await
}

/// Named transforms from the folder the guest build writes.
fn folder_transforms() -> std::sync::Arc<sluice_host::transforms::TransformSource> {
    std::sync::Arc::new(sluice_host::transforms::TransformSource::folder(
        sluice_tests::runtime().clone(),
        sluice_tests::guests_dir(),
    ))
}

fn topic_with(records: usize) -> String {
    let config = broker();
    let topic = fresh_topic("timer");
    ensure_topic(&config, &topic, 1).unwrap();
    let values: Vec<String> = (0..records).map(|i| format!(r#"{{"i":{i}}}"#)).collect();
    produce_to(&config, &topic, 0, &values);
    topic
}

async fn post(config: AppConfig, body: String) -> (StatusCode, Value) {
    call(config, "/Export", body).await
}

/// Posts `body` to `path` of a router built from `config` with the admin
/// key (what a standalone app asks of a trigger's caller); the answer's
/// status and JSON body.
async fn call(config: AppConfig, path: &str, body: String) -> (StatusCode, Value) {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .header("x-functions-key", ADMIN_KEY)
        .body(Body::from(body))
        .unwrap();
    let answered = answer(&config, request).await;
    (answered.status, answered.json())
}

/// What a router built from `config` answers to `request`, in-process.
pub struct Answered {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answered {
    /// The body as JSON, or `null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn answer(config: &AppConfig, request: Request<Body>) -> Answered {
    let response = router(config.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answered {
        status,
        content_type,
        headers,
        body: body.to_vec(),
    }
}

#[cfg(feature = "integration-tests")]
#[tokio::test]
async fn a_past_due_timer_with_a_double_encoded_payload_runs_the_export() {
    let topic = topic_with(5);
    let app = app(&[&topic]);
    // As the host sends it: the binding value is a JSON string.
    let timer =
        json!({"Schedule": {"AdjustForDST": true}, "ScheduleStatus": null, "IsPastDue": true})
            .to_string();
    let body = json!({"Data": {"timer": timer}, "Metadata": {"sys": {"MethodName": "Export", "UtcNow": "2026-11-22T01:00:00Z", "RandGuid": "x"}}});
    let (status, response) = post(app.config.clone(), body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let value = &response["ReturnValue"];
    assert_eq!(value["past_due"], true);
    assert_eq!(value["topics"][0]["status"], "ok");
    assert_eq!(value["topics"][0]["records"], 5);
    assert_eq!(value["topics"][0]["files"], 1);
    assert!(
        response["Logs"][0].as_str().unwrap().contains("past due"),
        "{response}"
    );
    let file = app.dir.path().join(format!(
        "out/topic={topic}/partition=0/{topic}+0+0-4.parquet"
    ));
    assert!(file.is_file());
}

#[cfg(feature = "integration-tests")]
#[tokio::test]
async fn an_object_payload_with_schedule_status_and_string_flags_is_accepted() {
    let topic = topic_with(2);
    let app = app(&[&topic]);
    let body = json!({"Data": {"myTimer": {"ScheduleStatus": {"Last": "2026-11-22T00:45:00Z", "Next": "2026-11-22T01:00:00Z", "LastUpdated": "2026-11-22T00:45:00Z"}, "IsPastDue": "false"}}, "Metadata": {}});
    let (status, response) = post(app.config, body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["ReturnValue"]["past_due"], false);
    assert_eq!(response["ReturnValue"]["topics"][0]["records"], 2);
}

#[cfg(feature = "integration-tests")]
#[tokio::test]
async fn a_failing_topic_answers_500_and_names_it() {
    let good = topic_with(1);
    let missing = fresh_topic("timer-missing");
    let app = app(&[&good, &missing]);
    let body = json!({"Data": {"timer": {"IsPastDue": false}}, "Metadata": {}});
    let (status, response) = post(app.config, body.to_string()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let topics = &response["ReturnValue"]["topics"];
    assert_eq!(
        topics[0]["status"], "ok",
        "the other topic still ran: {response}"
    );
    assert_eq!(topics[1]["status"], "failed");
    assert!(
        topics[1]["error"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{response}"
    );
}

#[tokio::test]
async fn a_bad_configuration_is_reported_with_the_field() {
    let app = app(&["whatever"]);
    std::fs::write(&app.config.topics, r#"[{"topic": "t", "group_id": 7}]"#).unwrap();
    let body = json!({"Data": {"timer": {"IsPastDue": false}}, "Metadata": {}});
    let (status, response) = post(app.config, body.to_string()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let error = response["ReturnValue"]["error"].as_str().unwrap();
    assert!(error.contains("field `group_id`"), "{error}");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused() {
    let app = app(&["whatever"]);
    let (status, _) = post(app.config, "not json".into()).await;
    assert!(status.is_client_error(), "{status}");
}

/// Where page tests leave their screenshots: `<target>/screenshots/`.
pub fn screenshot_path(file: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(file)
}

/// Headless Chromium as the machine notes ask for it: no sandbox (root in
/// a container), no GPU, nothing fetched from the network by itself.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
];

/// Headless Chromium with [`CHROMIUM_FLAGS`] and a fresh profile; panics
/// with its stderr when it fails.
fn chromium(args: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("chromium")
        .args(CHROMIUM_FLAGS)
        .args(["--virtual-time-budget=10000", "--window-size=1280,720"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium (scripts/setup.sh installs it)");
    assert!(
        output.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The page at `url` as Chromium renders it: its DOM once scripts ran, and
/// a screenshot saved as `<target>/screenshots/<file>`.
pub fn render_page(url: &str, file: &str) -> String {
    let shot = screenshot_path(file);
    let dom = chromium(&["--dump-dom".into(), url.to_owned()]);
    chromium(&[format!("--screenshot={}", shot.display()), url.to_owned()]);
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "screenshot written to {}", shot.display());
    eprintln!("screenshot: {}", shot.display());
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// Under the Functions host the triggers answer the host's calls over
/// loopback and nothing else, key or no key (the process test in
/// `functions/tests/serve.rs` tries the same through a real socket where
/// the machine has an address besides loopback).
#[cfg(feature = "integration-tests")]
#[tokio::test]
async fn under_the_functions_host_a_trigger_from_another_address_is_refused() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    let topic = topic_with(1);
    let mut app = app(&[&topic]);
    app.config.access = std::sync::Arc::new(Access {
        platform: super::Platform::FunctionsHost,
        ..(*app.config.access).clone()
    });
    let from = |peer: &str| {
        let mut request = Request::post("/Export")
            .header("content-type", "application/json")
            .header("x-functions-key", ADMIN_KEY)
            .body(Body::from(
                json!({"Data": {"timer": {}}, "Metadata": {}}).to_string(),
            ))
            .unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    };
    let refused = answer(&app.config, from("192.0.2.10:40000")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert!(refused.text().contains("192.0.2.10"), "{}", refused.text());
    let host = answer(&app.config, from("127.0.0.1:40000")).await;
    assert_eq!(host.status, StatusCode::OK, "{}", host.text());
    assert_eq!(host.json()["ReturnValue"]["topics"][0]["records"], 1);
}
