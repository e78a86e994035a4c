//! `GET /api/fetch`, `POST /api/transforms/{name}/invoke` and the fetch page,
//! in-process against the real broker; the page in real headless Chromium.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sluice_host::kafka::{ProduceRecord, Producer, ensure_topic};
use sluice_host::record::Header;
use sluice_tests::{broker, fresh_topic};
use tower::ServiceExt;

use super::{answer, render_page};
use crate::handler::data::DataApi;
use crate::handler::{AppConfig, router};
use sluice_host::fetch::FetchLimits;

const KEY: &str = "data-key-0123456789abcdef0123456789";

fn app_with(limits: FetchLimits) -> AppConfig {
    super::data_app(KEY, limits)
}

fn app() -> AppConfig {
    app_with(FetchLimits::default())
}

/// A topic with `per_partition` JSON records `{"p": partition, "i": n}` in
/// each of `partitions` partitions, each with a header.
fn topic(partitions: i32, per_partition: usize) -> String {
    let config = broker();
    let topic = fresh_topic("fetch");
    ensure_topic(&config, &topic, partitions).unwrap();
    let records: Vec<ProduceRecord> = (0..partitions)
        .flat_map(|p| {
            let topic = topic.clone();
            (0..per_partition).map(move |i| ProduceRecord {
                timestamp: None,
                topic: topic.clone(),
                partition: Some(p),
                key: Some(format!("k{i}").into_bytes()),
                value: Some(json!({"p": p, "i": i}).to_string().into_bytes()),
                headers: vec![Header {
                    key: "source".into(),
                    value: Some(b"test".to_vec()),
                }],
            })
        })
        .collect();
    Producer::new(&config).unwrap().send_all(&records).unwrap();
    topic
}

async fn get(config: &AppConfig, uri: &str, accept: Option<&str>) -> (StatusCode, String, Vec<u8>) {
    let mut request = Request::get(uri).header("x-functions-key", KEY);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let answered = answer(config, request.body(Body::empty()).unwrap()).await;
    (answered.status, answered.content_type, answered.body)
}

async fn get_json(config: &AppConfig, uri: &str) -> (StatusCode, Value) {
    let (status, _, bytes) = get(config, uri, None).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn offsets(body: &Value) -> Vec<(i64, i64)> {
    body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn fetch_returns_what_exists_and_says_whether_it_is_complete() {
    let t = topic(2, 20);
    let config = app();
    let (status, body) = get_json(
        &config,
        &format!("/api/fetch?topic={t}&partition=0&offset=5&count=10"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(offsets(&body), (5..15).map(|o| (0, o)).collect::<Vec<_>>());
    assert_eq!(body["complete"], true);
    let first = &body["records"][0];
    assert_eq!(first["value"], json!({"p": 0, "i": 5}));
    assert_eq!(
        (first["key"].as_str(), first["headers"]["source"].as_str()),
        (Some("k5"), Some("test"))
    );

    // Past the end: what exists, at once.
    let (_, body) = get_json(
        &config,
        &format!("/api/fetch?topic={t}&partition=1&offset=15&count=100"),
    )
    .await;
    assert_eq!(offsets(&body), (15..20).map(|o| (1, o)).collect::<Vec<_>>());
    assert_eq!(body["complete"], true);

    // Several partitions, one offset each.
    let (_, body) = get_json(
        &config,
        &format!("/api/fetch?topic={t}&partition=0,1&offset=18,19&count=5"),
    )
    .await;
    assert_eq!(offsets(&body), [(0, 18), (0, 19), (1, 19)]);
}

#[tokio::test]
async fn limits_cannot_be_exceeded_and_are_reported() {
    let t = topic(1, 30);
    let tight = app_with(FetchLimits {
        max_count: 8,
        max_bytes: 100,
        max_time: Duration::from_secs(10),
    });
    let (_, body) = get_json(&tight, &format!("/api/fetch?topic={t}&count=3")).await;
    assert_eq!(
        (body["returned"].as_u64(), body["complete"].as_bool()),
        (Some(3), Some(true))
    );
    let (_, body) = get_json(&tight, &format!("/api/fetch?topic={t}&count=50")).await;
    assert_eq!(body["limited_by"], "bytes", "{body}");
    assert!(body["returned"].as_u64().unwrap() < 8);
    let counted = app_with(FetchLimits {
        max_count: 8,
        ..FetchLimits::default()
    });
    let (status, _, _) = get(&counted, &format!("/api/fetch?topic={t}&count=50"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = get_json(&counted, &format!("/api/fetch?topic={t}&count=50")).await;
    assert_eq!(
        (body["returned"].as_u64(), body["limited_by"].as_str()),
        (Some(8), Some("count"))
    );
}

/// `partition=0,…,63&count=10000` held up to 640,000 records: the limits
/// were per partition. Under a limit of 100 records each answer holds at
/// most 100 of the 640, says where to go on (in the JSON and, for every
/// format, in a header), and following it returns every record once.
#[tokio::test]
async fn limits_hold_over_the_whole_request_and_say_where_to_go_on() {
    let t = topic(64, 10);
    let config = app_with(FetchLimits {
        max_count: 100,
        ..FetchLimits::default()
    });
    let all: Vec<String> = (0..64).map(|p| p.to_string()).collect();
    let mut uri = format!(
        "/api/fetch?topic={t}&partition={}&offset=0&count=10000",
        all.join(",")
    );
    let first_page = uri.clone();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (status, body) = get_json(&config, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let got = offsets(&body);
        assert!(got.len() <= 100, "{} records", got.len());
        for record in got {
            assert!(seen.insert(record), "{record:?} returned twice");
        }
        if body["complete"] == true {
            assert_eq!(body["next_offsets"], json!({}));
            break;
        }
        assert_eq!(body["limited_by"], "count", "{}", body["limited_by"]);
        let next = body["next_offsets"].as_object().unwrap();
        assert!(!next.is_empty());
        let (partitions, offsets): (Vec<&str>, Vec<String>) = next
            .iter()
            .map(|(p, o)| (p.as_str(), o.to_string()))
            .unzip();
        uri = format!(
            "/api/fetch?topic={t}&partition={}&offset={}&count=10000",
            partitions.join(","),
            offsets.join(",")
        );
    }
    assert_eq!(seen.len(), 640);

    let answered = answer(
        &config,
        Request::get(format!("{first_page}&format=ndjson"))
            .header("x-functions-key", KEY)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answered.text().lines().count(), 100);
    let header = |name: &str| {
        answered
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("x-sluice-limited-by"), "count");
    let next = header("x-sluice-next-offsets");
    let pairs: Vec<(i32, i64)> = next
        .split(',')
        .map(|pair| {
            let (p, o) = pair.split_once('=').unwrap();
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
    assert!(
        !pairs.is_empty()
            && pairs
                .iter()
                .all(|(p, o)| (0..64).contains(p) && (0..=10).contains(o)),
        "{next}"
    );
}

/// Records with 16 KiB headers and values of a few bytes: headers were not
/// counted, so all came back under a 64 KiB limit. Now they count.
#[tokio::test]
async fn headers_count_toward_the_byte_limit() {
    let config = broker();
    let t = fresh_topic("fetch-headers");
    ensure_topic(&config, &t, 2).unwrap();
    let records: Vec<ProduceRecord> = (0..8)
        .map(|i| ProduceRecord {
            timestamp: None,
            topic: t.clone(),
            partition: Some(i % 2),
            key: None,
            value: Some(json!({"i": i}).to_string().into_bytes()),
            headers: vec![Header {
                key: "blob".into(),
                value: Some(vec![b'h'; 16 << 10]),
            }],
        })
        .collect();
    Producer::new(&config).unwrap().send_all(&records).unwrap();
    let app = app_with(FetchLimits {
        max_bytes: 64 << 10,
        ..FetchLimits::default()
    });
    let (status, body) = get_json(
        &app,
        &format!("/api/fetch?topic={t}&partition=0,1&count=100"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["returned"].as_u64(), body["limited_by"].as_str()),
        (Some(3), Some("bytes")),
        "three records of just over 16 KiB fit in 64 KiB"
    );
    assert_eq!(body["next_offsets"].as_object().map(|o| o.len()), Some(2));
}

#[tokio::test]
async fn every_format_by_parameter_or_accept_header() {
    let t = topic(1, 4);
    let config = app();
    let base = format!("/api/fetch?topic={t}&count=4");
    let (_, content_type, body) = get(&config, &format!("{base}&format=ndjson"), None).await;
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["value"]["i"], 3);

    for (uri, accept) in [
        (format!("{base}&format=csv"), None),
        (base.clone(), Some("text/csv")),
    ] {
        let (status, content_type, body) = get(&config, &uri, accept).await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/csv"));
        let text = String::from_utf8(body).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows[0], "partition,offset,timestamp,key,value");
        assert_eq!(rows.len(), 5);
        assert!(rows[1].ends_with(r#","{""p"":0,""i"":0}""#), "{}", rows[1]);
    }

    let (_, content_type, body) = get(&config, &format!("{base}&format=parquet"), None).await;
    assert_eq!(content_type, "application/vnd.apache.parquet");
    let reader =
        parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(body)).unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows(), 4);
}

#[tokio::test]
async fn errors_name_the_problem() {
    let t = topic(1, 5);
    let config = app();
    let missing = fresh_topic("no-such");
    let cases = [
        (
            format!("/api/fetch?topic={missing}"),
            StatusCode::NOT_FOUND,
            "does not exist",
        ),
        (
            format!("/api/fetch?topic={t}&partition=4"),
            StatusCode::NOT_FOUND,
            "no partition 4",
        ),
        (
            format!("/api/fetch?topic={t}&offset=99"),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "0..5",
        ),
        (
            format!("/api/fetch?topic={t}&format=xml"),
            StatusCode::BAD_REQUEST,
            "`format`",
        ),
        (
            format!("/api/fetch?topic={t}&partition=x"),
            StatusCode::BAD_REQUEST,
            "`partition`",
        ),
        (
            format!("/api/fetch?topic={t}&partition=0,1&offset=1,2,3"),
            StatusCode::BAD_REQUEST,
            "`offset`",
        ),
        ("/api/fetch".to_owned(), StatusCode::BAD_REQUEST, "topic"),
        (
            format!("/api/fetch?topic={t}&transform=nope"),
            StatusCode::NOT_FOUND,
            "nope",
        ),
    ];
    for (uri, status, text) in cases {
        let (got, body) = get_json(&config, &uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(text),
            "{uri}: `{error}` should mention `{text}`"
        );
    }
}

#[tokio::test]
async fn a_dry_run_shows_each_record_beside_its_outcome() {
    let config = broker();
    let t = fresh_topic("dry");
    ensure_topic(&config, &t, 1).unwrap();
    let values = [
        json!({"i": 1}),
        json!({"do": "drop"}),
        json!({"do": "fail", "reason": "no hotel"}),
        json!({"do": "trap"}),
    ];
    sluice_tests::produce_to(
        &config,
        &t,
        0,
        &values.iter().map(Value::to_string).collect::<Vec<_>>(),
    );
    let (status, body) = get_json(
        &app(),
        &format!("/api/fetch?topic={t}&count=4&transform=misbehave"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcomes: Vec<&Value> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["outcome"])
        .collect();
    assert_eq!(
        outcomes[0],
        &json!({"emit": [{"topic": null, "value": {"i": 1}}]})
    );
    assert_eq!(outcomes[1], &json!({"drop": true}));
    assert_eq!(outcomes[2], &json!({"fail": "no hotel"}));
    assert_eq!(outcomes[3]["kind"], "trap");
    assert!(outcomes[3]["error"].as_str().unwrap().contains("offset 3"));
}

async fn post(
    config: &AppConfig,
    uri: &str,
    key: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = Request::post(uri).header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let answered = answer(config, request.body(Body::from(body.to_string())).unwrap()).await;
    (answered.status, answered.json())
}

#[tokio::test]
async fn invoke_runs_a_transform_on_posted_records() {
    let config = app();
    let records = json!([
        {"i": 1},
        {"do": "drop"},
        {"key": "k", "value": {"do": "fail", "reason": "bad"}, "headers": {"h": "v"}},
        {"value": "{\"do\":\"trap\"}"},
    ]);
    let (status, body) = post(
        &config,
        "/api/transforms/misbehave/invoke",
        Some(KEY),
        records,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcomes = body["outcomes"].as_array().unwrap();
    assert_eq!(
        outcomes[0],
        json!({"emit": [{"topic": null, "value": {"i": 1}}]})
    );
    assert_eq!(outcomes[1], json!({"drop": true}));
    assert_eq!(outcomes[2], json!({"fail": "bad"}));
    assert_eq!(outcomes[3]["kind"], "trap");
    assert_eq!(body["version"].as_str().unwrap().len(), 12);

    let (status, _) = post(
        &config,
        "/api/transforms/nope/invoke",
        Some(KEY),
        json!([1]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_api_needs_the_key_but_the_page_does_not() {
    let config = app();
    let (status, body) = post(
        &config,
        "/api/transforms/misbehave/invoke",
        None,
        json!([1]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = post(
        &config,
        "/api/transforms/misbehave/invoke",
        Some("wrong"),
        json!([1]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = router(config.clone())
        .oneshot(
            Request::get("/api/fetch?topic=x")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = router(config)
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&page).contains("/api/fetch"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_fetches_and_shows_records_in_chromium() {
    let t = topic(1, 6);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(axum::serve(listener, router(app())).into_future());
    let url = format!(
        "http://127.0.0.1:{port}/?topic={t}&partition=0&offset=2&count=3&transform=misbehave&run=1#key={KEY}"
    );
    let dom = tokio::task::spawn_blocking(move || render_page(&url, "fetch-page-dry-run.png"))
        .await
        .unwrap();
    server.abort();
    assert!(dom.contains("3 records"), "status line in: {dom}");
    for offset in 2..5 {
        assert!(
            dom.contains(&format!("<td>{offset}</td>")),
            "offset {offset} in the table"
        );
    }
    assert!(dom.contains(r#"{"p":0,"i":4}"#), "values in the table");
    assert!(dom.contains("emit"), "the dry-run outcome column");
}

#[tokio::test]
async fn avro_values_are_decoded_through_the_schema_registry() {
    use apache_avro::Schema;
    use apache_avro::types::Value as Avro;
    use sluice_tests::schema_registry::{confluent_avro, start};

    let schema = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}"#;
    // Schema 8, a linked list, is recursive: a value nested past the depth
    // limit is shown as stored with the reason, where before the check it
    // overflowed the stack and aborted the whole server.
    let list = r#"{"type":"record","name":"Node","fields":[{"name":"value","type":"int"},{"name":"next","type":["null","Node"]}]}"#;
    let registry = start(vec![(7, schema.to_owned()), (8, list.to_owned())]);
    let parsed = Schema::parse_str(schema).unwrap();
    let mut deep = vec![0, 0, 0, 0, 8];
    for node in 1..=100_000 {
        // Each node's value 1 and its `next`: branch 1, the last branch 0.
        deep.extend([0x02, if node < 100_000 { 0x02 } else { 0x00 }]);
    }
    let user = Avro::Record(vec![
        ("id".into(), Avro::Long(42)),
        ("name".into(), Avro::String("ada".into())),
    ]);
    let config = broker();
    let t = fresh_topic("fetch-avro");
    ensure_topic(&config, &t, 1).unwrap();
    let records = [confluent_avro(7, &parsed, user), b"not avro".to_vec(), deep]
        .into_iter()
        .map(|value| ProduceRecord {
            timestamp: None,
            topic: t.clone(),
            partition: Some(0),
            key: None,
            value: Some(value),
            headers: Vec::new(),
        })
        .collect::<Vec<_>>();
    Producer::new(&config).unwrap().send_all(&records).unwrap();

    // An app whose fetches decode through `registry` (a client of its
    // own: nothing cached).
    let with_registry = || {
        let mut app = app();
        if let Some(data) = app.data.as_mut() {
            let client = sluice_host::codec::SchemaRegistry::new(&registry.url)
                .unwrap()
                .with_backoff(sluice_host::retry::Backoff::NONE);
            *data = Arc::new(DataApi {
                readers: data.readers.clone(),
                limits: data.limits,
                transforms: data.transforms.clone(),
                schema_registry: Some(Arc::new(client)),
                lake: None,
            });
        }
        app
    };
    // The registry down: the values are not marked undecodable, the
    // fetch says to try again.
    registry.go_down_after(0);
    let (status, body) = get_json(
        &with_registry(),
        &format!("/api/fetch?topic={t}&count=2&value_format=avro"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("unavailable") && error.contains("503"),
        "{error}"
    );
    registry.come_back();
    let (status, body) = get_json(
        &with_registry(),
        &format!("/api/fetch?topic={t}&count=3&value_format=avro"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["records"][0]["value"],
        json!({"id": 42, "name": "ada"})
    );
    assert_eq!(body["records"][1]["value"], "not avro", "shown as stored");
    let reason = body["records"][1]["headers"]["sluice.decode.error"]
        .as_str()
        .unwrap();
    assert!(reason.contains("Confluent wire format"), "{reason}");
    let reason = body["records"][2]["headers"]["sluice.decode.error"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("schema 8") && reason.contains("nests more than 128 levels deep"),
        "{reason}"
    );

    let (status, body) = get_json(&app(), &format!("/api/fetch?topic={t}&value_format=avro")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("SLUICE_SCHEMA_REGISTRY_URL")
    );
}

#[tokio::test]
async fn fetch_can_start_at_a_time() {
    let config = broker();
    let t = fresh_topic("fetch-time");
    ensure_topic(&config, &t, 1).unwrap();
    let before: Vec<String> = (0..3)
        .map(|i| json!({"batch": "before", "i": i}).to_string())
        .collect();
    sluice_tests::produce_to(&config, &t, 0, &before);
    std::thread::sleep(Duration::from_millis(1100));
    let cut = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let after: Vec<String> = (0..2)
        .map(|i| json!({"batch": "after", "i": i}).to_string())
        .collect();
    sluice_tests::produce_to(&config, &t, 0, &after);

    let app = app();
    let (status, body) = get_json(
        &app,
        &format!("/api/fetch?topic={t}&from_timestamp={cut}&count=10"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(offsets(&body), [(0, 3), (0, 4)]);
    let rfc3339 = chrono::DateTime::from_timestamp_millis(cut as i64)
        .unwrap()
        .to_rfc3339();
    let uri = format!(
        "/api/fetch?topic={t}&count=10&from_timestamp={}",
        rfc3339.replace('+', "%2B")
    );
    let (_, body) = get_json(&app, &uri).await;
    assert_eq!(offsets(&body), [(0, 3), (0, 4)], "RFC 3339 works the same");
    let later = cut + 60_000;
    let (_, body) = get_json(
        &app,
        &format!("/api/fetch?topic={t}&from_timestamp={later}"),
    )
    .await;
    assert_eq!(body["returned"], 0, "nothing at or after a future time");
    let (status, _) = get_json(&app, &format!("/api/fetch?topic={t}&from_timestamp=soon")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn transform_names_that_are_paths_are_refused_naming_the_rule() {
    // A real component outside the transforms folder, where a path-shaped
    // name would have reached it.
    let elsewhere = tempfile::tempdir().unwrap();
    let wasm = elsewhere.path().join("evil.wasm");
    std::fs::write(&wasm, sluice_tests::guest("misbehave")).unwrap();
    let path = wasm.to_str().unwrap();
    let config = app();
    let t = topic(1, 1);
    let stem = path.trim_end_matches(".wasm");
    for name in [path, stem, "../misbehave", "Misbehave", "mis behave"] {
        let (status, body) = get_json(
            &config,
            &format!("/api/fetch?topic={t}&transform={}", url_encoded(name)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("not a path"),
            "{name}: {body}"
        );
    }
    let relative = format!("..%2F..{}", url_encoded(stem));
    for name in [url_encoded(path), relative, "..".into()] {
        let (status, body) = post(
            &config,
            &format!("/api/transforms/{name}/invoke"),
            Some(KEY),
            json!([{"i": 1}]),
        )
        .await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{name}: {status} {body}"
        );
        assert_ne!(status, StatusCode::OK);
    }
}

fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn metrics_need_their_key_and_count_requests_by_route() {
    if sluice_tests::python_tools().is_none() {
        eprintln!("skipped: no tool virtualenv (scripts/setup.sh python-tools makes it)");
        return;
    }
    const SCRAPE: &str = "scrape-key-0123456789abcdef01234567";
    let mut config = app();
    config.metrics = Some(Arc::new(crate::handler::metrics::MetricsRoute {
        handle: crate::metrics::handle().unwrap(),
    }));
    config.access = Arc::new(crate::handler::Access {
        metrics_key: Some(super::key(SCRAPE)),
        ..(*config.access).clone()
    });
    let t = topic(1, 2);
    for _ in 0..3 {
        let (status, _) = get_json(&config, &format!("/api/fetch?topic={t}&count=1")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _, _) = get(&config, "/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let request = Request::get("/metrics")
        .header("authorization", format!("Bearer {SCRAPE}"))
        .body(Body::empty())
        .unwrap();
    let answered = answer(&config, request).await;
    assert_eq!(answered.status, StatusCode::OK);
    let samples = sluice_tests::parse_prometheus(&answered.text());
    let fetches: f64 = samples
        .iter()
        .filter(|(name, labels, _)| {
            name == "sluice_http_requests_total"
                && labels.get("route").map(String::as_str) == Some("/api/fetch")
                && labels.get("status").map(String::as_str) == Some("200")
        })
        .map(|(_, _, v)| *v)
        .sum();
    assert!(fetches >= 3.0, "{samples:?}");
}
