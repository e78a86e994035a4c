//! The admin API in-process, on a registry in a temporary folder.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use sluice_host::registry::Registry;
use sluice_host::storage::AzureCredentials;
use sluice_tests::{guest, runtime};

use super::{answer, render_page};
use crate::handler::admin::{Admin, ExportFiles};
use crate::handler::{Access, AppConfig, PayloadLimit, router};

const KEY: &str = "s3cret-admin-key-0123456789abcdef0123";

struct App {
    _dir: tempfile::TempDir,
    config: AppConfig,
}

fn app(key: Option<&str>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(
        dir.path().join("registry").to_str().unwrap(),
        &AzureCredentials::default(),
    )
    .unwrap();
    let config = AppConfig {
        topics: dir.path().join("topics.json"),
        connections: dir.path().join("connections.json"),
        out: None,
        enrich: None,
        admin: Some(Arc::new(Admin {
            registry: Arc::new(registry),
            runtime: runtime().clone(),
            kafka: None,
            exports: Some(ExportFiles {
                topics: dir.path().join("topics.json"),
                storage: Some("abfss://lake@acct.dfs.core.windows.net/raw".into()),
            }),
        })),
        data: None,
        transforms: super::folder_transforms(),
        metrics: None,
        access: Arc::new(Access {
            admin_key: key.map(super::key),
            ..Access::default()
        }),
        payload_limit: PayloadLimit::built_in(),
    };
    App { _dir: dir, config }
}

enum Auth {
    None,
    FunctionsKey(&'static str),
    Bearer(&'static str),
}

async fn send(
    app: &App,
    method: Method,
    path: &str,
    auth: Auth,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    request = match auth {
        Auth::None => request,
        Auth::FunctionsKey(key) => request.header("x-functions-key", key),
        Auth::Bearer(key) => request.header("authorization", format!("Bearer {key}")),
    };
    if body.first() == Some(&b'{') || body.first() == Some(&b'[') {
        request = request.header("content-type", "application/json");
    }
    let answered = answer(&app.config, request.body(Body::from(body)).unwrap()).await;
    (answered.status, answered.json())
}

async fn admin(app: &App, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    send(app, method, path, Auth::FunctionsKey(KEY), body).await
}

fn routes() -> Vec<(Method, &'static str, Vec<u8>)> {
    vec![
        (Method::GET, "/api/transforms", vec![]),
        (
            Method::PUT,
            "/api/transforms/t?activate=true",
            guest("misbehave"),
        ),
        (Method::GET, "/api/transforms/t", vec![]),
        (
            Method::POST,
            "/api/transforms/t/activate",
            br#"{"version":"0123456789"}"#.to_vec(),
        ),
        (Method::POST, "/api/transforms/t/rollback", vec![]),
        (
            Method::POST,
            "/api/transforms/t/shadow",
            br#"{"version":"0123456789"}"#.to_vec(),
        ),
        (Method::GET, "/api/transforms/t/shadow", vec![]),
        (Method::DELETE, "/api/transforms/t/shadow", vec![]),
        (
            Method::DELETE,
            "/api/transforms/t/versions/0123456789",
            vec![],
        ),
        (Method::GET, "/api/pipelines", vec![]),
        (Method::POST, "/api/pipelines", b"[]".to_vec()),
        (Method::GET, "/api/pipelines/p", vec![]),
        (Method::PUT, "/api/pipelines/p", b"{}".to_vec()),
        (Method::DELETE, "/api/pipelines/p", vec![]),
        (Method::GET, "/api/topology", vec![]),
    ]
}

#[tokio::test]
async fn every_admin_route_needs_the_key_and_changes_nothing_without_it() {
    let app = app(Some(KEY));
    for (method, path, body) in routes() {
        for auth in [
            Auth::None,
            Auth::FunctionsKey("wrong"),
            Auth::Bearer("wrong"),
        ] {
            let (status, response) = send(&app, method.clone(), path, auth, body.clone()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert!(
                response["error"].as_str().is_some(),
                "JSON error for {method} {path}"
            );
        }
    }
    let (status, listed) = admin(&app, Method::GET, "/api/transforms", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed, json!([]), "nothing was uploaded without the key");
    let (status, _) = send(
        &app,
        Method::GET,
        "/api/transforms",
        Auth::Bearer(KEY),
        vec![],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "Bearer works as well as x-functions-key"
    );
}

#[tokio::test]
async fn without_a_configured_key_the_admin_api_is_closed() {
    let app = app(None);
    let (status, response) = send(
        &app,
        Method::GET,
        "/api/transforms",
        Auth::Bearer(KEY),
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        response["error"]
            .as_str()
            .unwrap()
            .contains("SLUICE_ADMIN_KEY")
    );
}

#[tokio::test]
async fn transforms_are_uploaded_activated_rolled_back_and_deleted() {
    let app = app(Some(KEY));
    let (status, first) = admin(
        &app,
        Method::PUT,
        "/api/transforms/lang?activate=true",
        guest("misbehave"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        (first["world"].as_str(), first["active"].as_bool()),
        (Some("transformer"), Some(true))
    );
    let (status, second) = admin(
        &app,
        Method::PUT,
        "/api/transforms/lang",
        guest("language-detect"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second["active"], false);
    let v1 = first["version"].as_str().unwrap().to_owned();
    let v2 = second["version"].as_str().unwrap().to_owned();

    let (status, refused) = admin(
        &app,
        Method::PUT,
        "/api/transforms/lang?activate=true",
        b"not wasm".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused["error"].as_str().unwrap().starts_with("refused:"),
        "{refused}"
    );

    let body = json!({"version": &v2[..12]}).to_string().into_bytes();
    let (status, manifest) = admin(&app, Method::POST, "/api/transforms/lang/activate", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(manifest["active"], v2.as_str());
    let (_, manifest) = admin(&app, Method::POST, "/api/transforms/lang/rollback", vec![]).await;
    assert_eq!(manifest["active"], v1.as_str());

    let path = format!("/api/transforms/lang/versions/{v1}");
    let (status, error) = admin(&app, Method::DELETE, &path, vec![]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    let path = format!("/api/transforms/lang/versions/{v2}");
    let (status, manifest) = admin(&app, Method::DELETE, &path, vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(manifest["versions"].as_array().unwrap().len(), 1);

    let (_, listed) = admin(&app, Method::GET, "/api/transforms", vec![]).await;
    assert_eq!(
        listed,
        json!([{"name": "lang", "active": v1, "versions": 1}])
    );
    let (status, _) = admin(&app, Method::GET, "/api/transforms/nope", vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = admin(
        &app,
        Method::POST,
        "/api/transforms/lang/activate",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"].as_str().unwrap().contains("version"),
        "{error}"
    );
}

/// The shadow routes: start, report (none yet), refuse the active version
/// and an aggregator, stop; promoting ends the shadow too.
#[tokio::test]
async fn a_shadow_is_started_reported_refused_stopped_and_ended_by_promotion() {
    let app = app(Some(KEY));
    let upload = |path: &'static str, guest_name: &'static str| {
        let app = &app;
        async move {
            let (status, uploaded) = admin(app, Method::PUT, path, guest(guest_name)).await;
            assert_eq!(status, StatusCode::CREATED, "{uploaded}");
            uploaded["version"].as_str().unwrap().to_owned()
        }
    };
    let v1 = upload("/api/transforms/stay?activate=true", "stay-category").await;
    let v2 = upload("/api/transforms/stay", "stay-category-v2").await;
    let agg = upload("/api/transforms/stay", "stay-summary").await;
    let version = |v: &str| json!({"version": &v[..12]}).to_string().into_bytes();

    let (status, report) = admin(&app, Method::GET, "/api/transforms/stay/shadow", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        report,
        json!({"transform": "stay", "active": v1, "shadow": null, "report": null})
    );
    let (status, error) = admin(
        &app,
        Method::POST,
        "/api/transforms/stay/shadow",
        version(&v1),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    let (status, error) = admin(
        &app,
        Method::POST,
        "/api/transforms/stay/shadow",
        version(&agg),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    let (status, error) = admin(
        &app,
        Method::POST,
        "/api/transforms/stay/shadow",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    let (status, manifest) = admin(
        &app,
        Method::POST,
        "/api/transforms/stay/shadow",
        version(&v2),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{manifest}");
    assert_eq!(
        (&manifest["active"], &manifest["shadow"]),
        (&json!(v1), &json!(v2))
    );
    let (_, report) = admin(&app, Method::GET, "/api/transforms/stay/shadow", vec![]).await;
    assert_eq!(
        report,
        json!({"transform": "stay", "active": v1, "shadow": v2, "report": null}),
        "no instance has reported"
    );
    let (status, manifest) =
        admin(&app, Method::DELETE, "/api/transforms/stay/shadow", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(manifest["shadow"], Value::Null);

    admin(
        &app,
        Method::POST,
        "/api/transforms/stay/shadow",
        version(&v2),
    )
    .await;
    let (_, manifest) = admin(
        &app,
        Method::POST,
        "/api/transforms/stay/activate",
        version(&v2),
    )
    .await;
    assert_eq!(
        (&manifest["active"], &manifest["shadow"]),
        (&json!(v2), &Value::Null)
    );
    let (status, _) = admin(&app, Method::GET, "/api/transforms/nope/shadow", vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pipelines_bulk_create_or_update_get_list_and_delete() {
    let app = app(Some(KEY));
    let pipeline = |name: &str, output: &str| {
        json!({"name": name, "inputs": ["posts"], "outputs": [output],
               "transform": "language-detect", "dead_letter": "posts.dlq"})
    };
    let bulk = json!([pipeline("worker1", "out1"), pipeline("worker2", "out2")]);
    let (status, applied) = admin(
        &app,
        Method::POST,
        "/api/pipelines",
        bulk.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied, json!({"applied": ["worker1", "worker2"]}));

    let mut update = pipeline("worker1", "out9");
    update.as_object_mut().unwrap().remove("name");
    let (status, _) = admin(
        &app,
        Method::PUT,
        "/api/pipelines/worker1",
        update.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = admin(&app, Method::GET, "/api/pipelines/worker1", vec![]).await;
    assert_eq!(got["outputs"], json!(["out9"]));

    let bad = json!([pipeline("worker3", "x"), {"name": "broken", "inputs": []}]);
    let (status, error) = admin(
        &app,
        Method::POST,
        "/api/pipelines",
        bad.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"].as_str().unwrap().contains("entry [1]"),
        "{error}"
    );
    let (_, listed) = admin(&app, Method::GET, "/api/pipelines", vec![]).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["worker1", "worker2"],
        "a bad bulk request stores nothing"
    );

    let (status, _) = admin(&app, Method::DELETE, "/api/pipelines/worker2", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin(&app, Method::GET, "/api/pipelines/worker2", vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mismatch = pipeline("other", "x").to_string().into_bytes();
    let (status, _) = admin(&app, Method::PUT, "/api/pipelines/worker1", mismatch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Stores `pipelines` and lists `export` in the app's topics.json.
async fn deploy(app: &App, pipelines: &Value, export: &str) {
    let (status, applied) = admin(
        app,
        Method::POST,
        "/api/pipelines",
        pipelines.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    let topics = json!([{"topic": export, "group_id": "export-g"}]);
    std::fs::write(app._dir.path().join("topics.json"), topics.to_string()).unwrap();
}

#[tokio::test]
async fn the_topology_joins_stored_pipelines_and_the_deployed_exports() {
    let app = app(Some(KEY));
    let (status, empty) = admin(&app, Method::GET, "/api/topology", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty, json!({"workers": [], "topics": [], "warnings": []}));

    let pipelines = json!([
        {"name": "enrich", "inputs": ["stays", "reviews"], "outputs": ["stays_ext"],
         "dead_letter": "enrich_dlq", "transform": {"name": "stay-category", "version": "0123456789ab"},
         "join": {"key": "id", "timeout_ms": 60000}},
        {"name": "back", "inputs": ["stays_ext"], "outputs": ["stays"],
         "dead_letter": "back_dlq", "transform": "misbehave"},
    ]);
    deploy(&app, &pipelines, "stays_ext").await;

    let (status, graph) = admin(&app, Method::GET, "/api/topology", vec![]).await;
    assert_eq!(status, StatusCode::OK, "{graph}");
    let worker = |id: &str| {
        graph["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {graph}"))
            .clone()
    };
    let enrich = worker("pipeline:enrich");
    assert_eq!(enrich["input_topics"], json!(["stays", "reviews"]));
    assert_eq!(enrich["transform_version"], "0123456789ab");
    assert_eq!(enrich["join"], json!({"key": "id", "timeout_ms": 60000}));
    assert_eq!(
        worker("export:stays_ext")["sink"],
        "Parquet files under abfss://lake@acct.dfs.core.windows.net/raw/stays_ext"
    );
    let roles: Vec<(String, String)> = graph["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        roles.contains(&("reviews".into(), "source".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&("enrich_dlq".into(), "dead_letter".into())),
        "{roles:?}"
    );
    let warnings = graph["warnings"].to_string();
    assert!(warnings.contains("loop: pipeline:"), "{warnings}");

    std::fs::write(app._dir.path().join("topics.json"), "[{").unwrap();
    let (status, graph) = admin(&app, Method::GET, "/api/topology", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let warnings = graph["warnings"].to_string();
    assert!(warnings.contains("exports left out"), "{warnings}");
    assert_eq!(graph["workers"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topology_page_draws_the_graph_in_chromium() {
    let app = app(Some(KEY));
    let pipelines = json!([
        {"name": "enrich", "inputs": ["stays", "reviews"], "outputs": ["stays_ext"],
         "dead_letter": "enrich_dlq", "transform": "stay-category",
         "join": {"key": "id", "timeout_ms": 60000}},
        {"name": "detect-language", "inputs": ["stays_ext"], "outputs": ["stays_lang"],
         "dead_letter": "detect_dlq", "transform": "language-detect"},
    ]);
    deploy(&app, &pipelines, "stays_lang").await;
    // One worker of `enrich` beating, one of `detect-language` gone quiet.
    let registry = app.config.admin.as_ref().unwrap().registry.clone();
    let now = sluice_host::health::now_ms();
    let beat = |pipeline: &str, worker: &str, at_ms: i64| sluice_host::health::Heartbeat {
        pipeline: pipeline.into(),
        worker: worker.into(),
        transform_version: "0123456789ab".into(),
        started_ms: now - 60_000,
        at_ms,
        every_ms: 5_000,
        read: 1_200,
        produced: 1_190,
        dead_lettered: 10,
        dropped: 0,
        rate: 40,
        lag: Some(5),
        stopped: false,
    };
    registry
        .put_heartbeat(&beat("enrich", "enrich-worker-1", now))
        .await
        .unwrap();
    registry
        .put_heartbeat(&beat("detect-language", "detect-worker-1", now - 120_000))
        .await
        .unwrap();
    // `enrich` follows stay-category, whose next version shadows it: the
    // node says how many records that version would change.
    let mut versions = Vec::new();
    for (path, name) in [
        (
            "/api/transforms/stay-category?activate=true",
            "stay-category",
        ),
        ("/api/transforms/stay-category", "stay-category-v2"),
    ] {
        let (status, uploaded) = admin(&app, Method::PUT, path, guest(name)).await;
        assert_eq!(status, StatusCode::CREATED, "{uploaded}");
        versions.push(uploaded["version"].as_str().unwrap().to_owned());
    }
    let (active, shadow) = (&versions[0], &versions[1]);
    let body = json!({"version": shadow}).to_string().into_bytes();
    let (status, started) = admin(
        &app,
        Method::POST,
        "/api/transforms/stay-category/shadow",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let report: sluice_host::shadow::ShadowReport = serde_json::from_value(json!({
        "transform": "stay-category", "active": active, "shadow": shadow,
        "instances": ["enrich-worker-1"], "compared": 1200, "same": 1160,
        "differ": {"records": 40}, "skipped": 300, "skipped_batches": 3,
        "shadowed_batches": 12, "active_ms": 100, "shadow_ms": 50, "samples": [],
        "updated_ms": now,
    }))
    .unwrap();
    registry
        .put_shadow_report("enrich-worker-1", &report)
        .await
        .unwrap();
    let (_, graph) = admin(&app, Method::GET, "/api/topology", vec![]).await;
    let shadows: Vec<(&Value, &Value)> = graph["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (&w["id"], &w["shadow"]))
        .collect();
    assert!(
        shadows.contains(&(
            &json!("pipeline:enrich"),
            &json!({"version": shadow, "compared": 1200, "differ": 40, "skipped": 300})
        )),
        "{shadows:?}"
    );
    assert!(
        shadows.contains(&(&json!("pipeline:detect-language"), &Value::Null)),
        "{shadows:?}"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(axum::serve(listener, router(app.config.clone())).into_future());
    let url = format!("http://127.0.0.1:{port}/topology#key={KEY}");
    let dom = tokio::task::spawn_blocking(move || render_page(&url, "topology-page.png"))
        .await
        .unwrap();
    server.abort();
    assert!(dom.contains("3 workers, 6 topics"), "status line in: {dom}");
    let shadow_line = format!("shadow {}: 40 of 1,200 differ", &shadow[..12]);
    assert!(
        dom.contains(&shadow_line),
        "{shadow_line} on the node in: {dom}"
    );
    for node in [
        r#"data-id="pipeline:enrich""#,
        r#"data-id="pipeline:detect-language""#,
        r#"data-id="export:stays_lang""#,
        r#"data-id="reviews""#,
    ] {
        assert!(dom.contains(node), "{node} drawn");
    }
    assert!(
        dom.contains(r#"data-from="stays_ext" data-to="pipeline:detect-language""#)
            || dom.contains(r#"data-to="pipeline:detect-language" data-from="stays_ext""#),
        "an edge from stays_ext to detect-language"
    );
    assert!(dom.contains("edge dead-letter"), "dead-letter edges drawn");
    assert!(dom.contains("Parquet files under"), "the export's sink");
    // The opening tag of the node `id`.
    let node = |id: &str| {
        let at = dom.find(&format!(r#"data-id="{id}""#)).unwrap_or(0);
        let start = dom[..at].rfind('<').unwrap_or(0);
        let end = dom[at..].find('>').map_or(dom.len(), |e| at + e);
        dom[start..end].to_owned()
    };
    assert!(
        node("pipeline:enrich").contains(r#"data-health="alive""#),
        "{}",
        node("pipeline:enrich")
    );
    assert!(
        dom.contains("1 instance · 40/s · lag 5 · 10 dead-lettered"),
        "enrich's rate, lag and dead letters drawn: {dom}"
    );
    assert!(
        node("pipeline:detect-language").contains(r#"data-health="silent""#),
        "{}",
        node("pipeline:detect-language")
    );
    assert!(dom.contains("silent since 2 min ago"), "{dom}");
}

#[tokio::test]
async fn a_pipeline_put_stores_exactly_its_path_name_whatever_the_body() {
    let app = app(Some(KEY));
    let definition = |name: &str| {
        json!({"name": name, "inputs": ["posts"], "outputs": ["out"],
               "transform": "language-detect", "dead_letter": "posts.dlq"})
    };
    let shapes = [
        b"[]".to_vec(),
        json!([definition("x"), definition("other")])
            .to_string()
            .into_bytes(),
        json!([definition("other")]).to_string().into_bytes(),
        b"null".to_vec(),
        b"42".to_vec(),
        b"\"x\"".to_vec(),
        json!({"name": 5}).to_string().into_bytes(),
        json!({"name": null}).to_string().into_bytes(),
        definition("other").to_string().into_bytes(),
        b"{\"name\": \"x\"".to_vec(),
        vec![0xff, 0xfe],
    ];
    for body in shapes {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let (status, answer) = admin(&app, Method::PUT, "/api/pipelines/x", body).await;
        assert!(status.is_client_error(), "{shown}: {status} {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{shown}: {answer}"
        );
    }
    let (_, listed) = admin(&app, Method::GET, "/api/pipelines", vec![]).await;
    assert_eq!(listed, json!([]), "nothing stored under any name");

    let mut nameless = definition("x");
    nameless.as_object_mut().unwrap().remove("name");
    let (status, stored) = admin(
        &app,
        Method::PUT,
        "/api/pipelines/x",
        nameless.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    let (_, listed) = admin(&app, Method::GET, "/api/pipelines", vec![]).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["x"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topology_page_edits_pipelines_with_the_mouse_and_saves_them() {
    let app = app(Some(KEY));
    let (status, uploaded) = admin(
        &app,
        Method::PUT,
        "/api/transforms/misbehave?activate=true",
        guest("misbehave"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let pipelines = json!([
        {"name": "enrich", "inputs": ["stays"], "outputs": ["stays_ext"],
         "dead_letter": "enrich_dlq", "transform": "misbehave"},
        {"name": "old", "inputs": ["stays_ext"], "outputs": ["stays_old"],
         "dead_letter": "old_dlq", "transform": "misbehave"},
    ]);
    deploy(&app, &pipelines, "stays_old").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(axum::serve(listener, router(app.config.clone())).into_future());
    let url = format!("http://127.0.0.1:{port}/topology#key={KEY}");
    tokio::task::spawn_blocking(move || {
        let mut page = super::browser::Browser::open(&url, 1600, 1000);
        let node = |id: &str| format!(r#"#graph [data-id="{id}"]"#);
        page.wait_for(
            r#"document.querySelector('[data-id="pipeline:enrich"]')"#,
            "the graph drawn",
        );
        page.click("#edit");
        page.wait_for("!document.getElementById('edit-bar').hidden", "edit mode");

        // A new pipeline with no inputs is refused, next to its node.
        page.click("#add-pipeline");
        page.wait_for(
            r#"document.querySelector('[data-id="pipeline:new-pipeline"]')"#,
            "the new pipeline drawn",
        );
        page.click("#apply");
        page.wait_for(
            r#"document.querySelector('[data-id="pipeline:new-pipeline"] .refusal')"#,
            "the refusal drawn at the pipeline",
        );
        let refusal = page.eval(
            r#"document.querySelector('[data-id="pipeline:new-pipeline"] .refusal').textContent"#,
        );
        assert!(
            refusal.as_str().is_some_and(|r| r.contains("inputs")),
            "the refusal names the field: {refusal}"
        );

        // Dragged edges: stays_ext -> new-pipeline (an input), then
        // new-pipeline -> a new topic (an output).
        page.drag(
            r#"[data-handle="stays_ext"]"#,
            &format!("{} rect", node("pipeline:new-pipeline")),
        );
        page.wait_for(
            r#"document.querySelector('.edge[data-from="stays_ext"][data-to="pipeline:new-pipeline"]')"#,
            "the input edge drawn",
        );
        page.click("#add-topic");
        page.wait_for(
            r#"document.querySelector('[data-id="new-topic"]')"#,
            "the new topic drawn",
        );
        page.drag(
            r#"[data-handle="pipeline:new-pipeline"]"#,
            &format!("{} rect", node("new-topic")),
        );
        page.wait_for(
            r#"document.querySelector('.edge[data-from="pipeline:new-pipeline"][data-to="new-topic"]')"#,
            "the output edge drawn",
        );

        // The label edited in the details, the transform chosen from the
        // registry's.
        page.click(&format!("{} rect", node("pipeline:new-pipeline")));
        page.wait_for("document.getElementById('transform-choice')", "the editor");
        let choices = page.eval(
            "[...document.getElementById('transform-choice').options].map((o) => o.value)",
        );
        assert_eq!(choices, json!(["misbehave"]), "the registry's transforms");
        page.click("#details input");
        page.eval("document.querySelector('#details input').select()");
        page.type_and_enter("lang-detect");
        page.wait_for(
            r#"document.querySelector('[data-id="pipeline:lang-detect"]')"#,
            "the pipeline renamed",
        );

        // Deleted with the × that hovering shows.
        page.hover(&format!("{} rect", node("pipeline:old")));
        page.click(r#"[data-delete="pipeline:old"]"#);
        page.wait_for(
            r#"!document.querySelector('[data-id="pipeline:old"]')"#,
            "old deleted from the graph",
        );
        page.screenshot(&super::screenshot_path("topology-edit.png"));
        page.click("#apply");
        page.wait_for(
            "document.getElementById('status').textContent.startsWith('Saved')",
            "saved",
        );
    })
    .await
    .unwrap();

    let (status, stored) = admin(&app, Method::GET, "/api/pipelines", vec![]).await;
    server.abort();
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["enrich", "lang-detect"], "{stored:#}");
    let added = &stored[1];
    assert_eq!(added["inputs"], json!(["stays_ext"]), "{added}");
    assert_eq!(added["outputs"], json!(["new-topic"]), "{added}");
    assert_eq!(added["transform"], "misbehave", "{added}");
    assert_eq!(stored[0]["outputs"], json!(["stays_ext"]), "enrich kept");
}

/// Health is best effort: a cluster that does not answer becomes a warning
/// (the graph is still served), and a heartbeat from hours ago is news to
/// nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topology_serves_without_the_cluster_and_leaves_old_heartbeats_out() {
    let mut app = app(Some(KEY));
    let pipelines = json!([
        {"name": "enrich", "inputs": ["stays"], "outputs": ["stays_ext"],
         "dead_letter": "enrich_dlq", "transform": "misbehave"},
    ]);
    deploy(&app, &pipelines, "stays_ext").await;
    let stored = app.config.admin.clone().unwrap();
    let now = sluice_host::health::now_ms();
    for (worker, at_ms) in [("recent", now - 1_000), ("last-week", now - 7 * 86_400_000)] {
        let beat = sluice_host::health::Heartbeat {
            pipeline: "enrich".into(),
            worker: worker.into(),
            transform_version: "0123456789ab".into(),
            started_ms: at_ms - 60_000,
            at_ms,
            every_ms: 5_000,
            read: 1,
            produced: 1,
            dead_lettered: 0,
            dropped: 0,
            rate: 1,
            lag: Some(0),
            stopped: false,
        };
        stored.registry.put_heartbeat(&beat).await.unwrap();
    }
    // Nothing listens on port 1.
    app.config.admin = Some(Arc::new(Admin {
        registry: stored.registry.clone(),
        runtime: stored.runtime.clone(),
        kafka: Some(sluice_host::kafka::KafkaConfig::new("127.0.0.1:1")),
        exports: None,
    }));
    let started = std::time::Instant::now();
    let (status, graph) = admin(&app, Method::GET, "/api/topology", vec![]).await;
    assert_eq!(status, StatusCode::OK, "{graph}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "waited {:?} for a cluster that does not answer",
        started.elapsed()
    );
    let warnings = graph["warnings"].to_string();
    assert!(warnings.contains("end offsets unavailable"), "{warnings}");
    let instances: Vec<&str> = graph["workers"][0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["worker"].as_str())
        .collect();
    assert_eq!(instances, ["recent"], "{graph:#}");
    assert!(graph["topics"][0]["end_offsets"].is_null(), "{graph:#}");
}
