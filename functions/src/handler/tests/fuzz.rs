//! Every route given bodies and query strings of every shape: JSON of any
//! form, JSON cut short, bytes that are not JSON. Each answer is a status
//! with a message; none is the panic backstop's, and none is a 5xx while
//! the broker and the registry are up (a 5xx would blame the server for
//! the caller's input).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use proptest::prelude::*;
use serde_json::json;
use sluice_host::enrich::PipelineDefinition;
use sluice_host::kafka::ensure_topic;
use sluice_host::registry::Registry;
use sluice_host::storage::AzureCredentials;
use sluice_host::transforms::TransformSource;
use sluice_tests::arbitrary::body;
use sluice_tests::{broker, fresh_topic, runtime};

use super::answer;
use crate::handler::admin::Admin;
use crate::handler::backstop::PANIC_MESSAGE;
use crate::handler::data::DataApi;
use crate::handler::{AppConfig, EnrichConfig};
use sluice_host::fetch::{FetchLimits, reader_pool};

const KEY: &str = "fuzz-key-0123456789abcdef0123456789a";

struct Fixture {
    _dir: tempfile::TempDir,
    config: AppConfig,
    topic: String,
}

/// An app with every route: export of an empty topics.json, a trigger
/// pipeline, the data API and the admin API over a fresh registry.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("topics.json"), "[]").unwrap();
    let connections = json!({"bootstrap_servers": broker().bootstrap_servers});
    std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();
    let topic = fresh_topic("fuzz");
    ensure_topic(&broker(), &topic, 1).unwrap();
    sluice_tests::produce_to(&broker(), &topic, 0, &[r#"{"i":1}"#.to_owned()]);
    let registry = Arc::new(
        Registry::open(
            dir.path().join("registry").to_str().unwrap(),
            &AzureCredentials::default(),
        )
        .unwrap(),
    );
    let transforms = Arc::new(TransformSource::folder(
        runtime().clone(),
        sluice_tests::guests_dir(),
    ));
    let (output, dead_letter) = (fresh_topic("fuzz-out"), fresh_topic("fuzz-dlq"));
    for created in [&output, &dead_letter] {
        ensure_topic(&broker(), created, 1).unwrap();
    }
    let pipeline = PipelineDefinition::from_value(&json!({
        "name": "fuzz", "inputs": [topic], "outputs": [output],
        "dead_letter": dead_letter, "transform": "misbehave",
    }))
    .unwrap();
    let config = AppConfig {
        topics: dir.path().join("topics.json"),
        connections: dir.path().join("connections.json"),
        out: Some(dir.path().join("out").to_string_lossy().into_owned()),
        enrich: Some(EnrichConfig::new(pipeline, broker()).unwrap()),
        admin: Some(Arc::new(Admin {
            registry,
            runtime: runtime().clone(),
            kafka: None,
            exports: None,
        })),
        data: Some(Arc::new(DataApi {
            readers: Arc::new(reader_pool(broker())),
            limits: FetchLimits::default(),
            transforms: transforms.clone(),
            schema_registry: None,
            lake: None,
        })),
        transforms,
        metrics: None,
        access: super::access(KEY),
        payload_limit: crate::handler::PayloadLimit::built_in(),
    };
    Fixture {
        _dir: dir,
        config,
        topic,
    }
}

fn fixture_once() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(fixture)
}

/// Percent-encodes everything but unreserved characters.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A query string: known parameters with arbitrary values, and junk.
fn query() -> impl Strategy<Value = String> {
    let parameter = prop_oneof![
        Just("topic"),
        Just("partition"),
        Just("offset"),
        Just("count"),
        Just("format"),
        Just("transform"),
        Just("version"),
        Just("value_format"),
        Just("from_timestamp"),
        Just("activate"),
    ];
    let value = prop_oneof![
        "[0-9,-]{0,8}",
        "[a-z0-9._-]{0,10}",
        any::<String>(),
        Just("misbehave".to_owned()),
        Just("json".to_owned()),
        Just("avro".to_owned()),
    ];
    prop::collection::vec((parameter, value), 0..5).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encoded(v)))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// A path segment where a route takes a name.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("misbehave".to_owned()),
        "[a-z0-9_-]{1,10}",
        any::<String>().prop_filter("a path segment", |s| !s.is_empty()),
        Just("..".to_owned()),
    ]
}

fn routes(name: &str, topic: &str) -> Vec<(Method, String)> {
    let name = encoded(name);
    vec![
        (Method::POST, "/Export".into()),
        (Method::POST, "/Enrich".into()),
        (Method::GET, format!("/api/fetch?topic={topic}")),
        (Method::GET, "/api/fetch".into()),
        (Method::POST, format!("/api/transforms/{name}/invoke")),
        (Method::GET, "/api/transforms".into()),
        (Method::GET, format!("/api/transforms/{name}")),
        (Method::PUT, format!("/api/transforms/{name}")),
        (Method::POST, format!("/api/transforms/{name}/activate")),
        (Method::POST, format!("/api/transforms/{name}/rollback")),
        (
            Method::DELETE,
            format!("/api/transforms/{name}/versions/{name}"),
        ),
        (Method::GET, "/api/pipelines".into()),
        (Method::POST, "/api/pipelines".into()),
        (Method::GET, format!("/api/pipelines/{name}")),
        (Method::PUT, format!("/api/pipelines/{name}")),
        (Method::DELETE, format!("/api/pipelines/{name}")),
        (Method::GET, "/api/topology".into()),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_route_answers_any_body_and_query_with_a_message(
        name in name(),
        body in body(),
        query in query(),
        json_type in any::<bool>(),
    ) {
        let fixture = fixture_once();
        let io = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for (method, path) in routes(&name, &fixture.topic) {
            let separator = if path.contains('?') { '&' } else { '?' };
            let uri = format!("{path}{separator}{query}");
            let mut request = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header("x-functions-key", KEY);
            if json_type {
                request = request.header("content-type", "application/json");
            }
            let Ok(request) = request.body(Body::from(body.clone())) else {
                continue; // not a URI a client could send
            };
            let answered = io.block_on(answer(&fixture.config, request));
            let shown = format!("{method} {uri} with {:?}", String::from_utf8_lossy(&body));
            prop_assert!(!answered.text().contains(PANIC_MESSAGE), "panicked: {}", shown);
            prop_assert!(
                !answered.status.is_server_error(),
                "{} answered {} {}", shown, answered.status, answered.text()
            );
            if !answered.status.is_success() {
                prop_assert!(!answered.text().trim().is_empty(), "{} gave no message", shown);
            }
        }
    }
}
