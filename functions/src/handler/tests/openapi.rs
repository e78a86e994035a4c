//! The OpenAPI document against the router: every documented operation is
//! served (the router answers it, not its 404/405 fallback), and every API
//! route is documented.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use sluice_host::registry::Registry;
use sluice_host::storage::AzureCredentials;
use sluice_tests::{broker, runtime};

use super::answer;
use crate::handler::AppConfig;
use crate::handler::admin::Admin;
use crate::handler::data::DataApi;
use sluice_host::fetch::{FetchLimits, reader_pool};

const KEY: &str = "openapi-key-0123456789abcdef01234567";

fn full_app(dir: &std::path::Path) -> AppConfig {
    let registry =
        Arc::new(Registry::open(dir.to_str().unwrap(), &AzureCredentials::default()).unwrap());
    let transforms = Arc::new(sluice_host::transforms::TransformSource::registry(
        runtime().clone(),
        registry.clone(),
    ));
    AppConfig {
        topics: "topics.json".into(),
        connections: "connections.json".into(),
        out: None,
        enrich: None,
        admin: Some(Arc::new(Admin {
            registry: registry.clone(),
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
    }
}

async fn send(config: &AppConfig, method: Method, uri: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-functions-key", KEY)
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let answered = answer(config, request).await;
    (answered.status, answered.body)
}

#[tokio::test]
async fn the_document_and_the_routes_match() {
    let dir = tempfile::tempdir().unwrap();
    let config = full_app(dir.path());
    let (status, body) = send(&config, Method::GET, "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let document: Value = serde_json::from_slice(&body).unwrap();
    let paths = document["paths"].as_object().unwrap();
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/api/fetch"),
        ("GET", "/api/search"),
        ("GET", "/api/search/download"),
        ("GET", "/api/topics"),
        ("POST", "/api/transforms/{name}/invoke"),
        ("GET", "/api/transforms"),
        ("GET", "/api/transforms/{name}"),
        ("PUT", "/api/transforms/{name}"),
        ("POST", "/api/transforms/{name}/activate"),
        ("POST", "/api/transforms/{name}/rollback"),
        ("POST", "/api/transforms/{name}/shadow"),
        ("GET", "/api/transforms/{name}/shadow"),
        ("DELETE", "/api/transforms/{name}/shadow"),
        ("DELETE", "/api/transforms/{name}/versions/{version}"),
        ("GET", "/api/pipelines"),
        ("POST", "/api/pipelines"),
        ("GET", "/api/pipelines/{name}"),
        ("PUT", "/api/pipelines/{name}"),
        ("DELETE", "/api/pipelines/{name}"),
        ("GET", "/api/topology"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(
        documented, expected,
        "every API route documented, nothing else"
    );
    assert!(document["components"]["securitySchemes"]["functions_key"].is_object());

    for (method, path) in &documented {
        let uri = path
            .replace("{name}", "nothing-here")
            .replace("{version}", "0123456789abcdef")
            + if ["/api/fetch", "/api/search", "/api/search/download"].contains(&path.as_str()) {
                "?topic=x"
            } else {
                ""
            };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = send(&config, method.clone(), &uri).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        // A handler's 404 explains itself in JSON; the router's is empty.
        let handled = serde_json::from_slice::<Value>(&body)
            .map(|v| v.get("error").is_some() || status.is_success())
            .unwrap_or(false);
        assert!(
            handled,
            "{method} {uri} answered {status} from the router, not a handler"
        );
    }

    let (status, page) = send(&config, Method::GET, "/api/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains("/api/openapi.json"));
}

/// The one layer stands in front of every route but the pages and the
/// document: without a key, each documented operation and each custom-
/// handler route is a 401 from it; the pages answer anyone.
#[tokio::test]
async fn without_a_key_every_route_but_the_pages_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = full_app(dir.path());
    config.metrics = Some(Arc::new(crate::handler::metrics::MetricsRoute {
        handle: crate::metrics::handle().unwrap(),
    }));
    let anonymous = |method: Method, uri: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap()
    };
    let (_, body) = send(&config, Method::GET, "/api/openapi.json").await;
    let document: Value = serde_json::from_slice(&body).unwrap();
    let mut operations: Vec<(Method, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            let uri = path
                .replace("{name}", "t")
                .replace("{version}", "0123456789abcdef");
            item.as_object().unwrap().keys().map(move |m| {
                (
                    Method::from_bytes(m.to_uppercase().as_bytes()).unwrap(),
                    uri.clone(),
                )
            })
        })
        .collect();
    for trigger in ["/Export", "/Enrich", "/events"] {
        operations.push((Method::POST, trigger.to_owned()));
    }
    operations.push((Method::GET, "/metrics".to_owned()));
    for (method, uri) in operations {
        let answered = answer(&config, anonymous(method.clone(), &uri)).await;
        assert_eq!(answered.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    for page in ["/", "/topology", "/api/docs", "/api/openapi.json"] {
        let answered = answer(&config, anonymous(Method::GET, page)).await;
        assert_eq!(answered.status, StatusCode::OK, "{page}");
    }
}
