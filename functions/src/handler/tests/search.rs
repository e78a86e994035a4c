//! `GET /api/search` in-process against the real broker: a key found in its
//! partitioner's partition, a filter with cursor paging, newest first, and
//! every bad parameter refused with a 400 naming it.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};
use sluice_host::fetch::FetchLimits;
use sluice_host::kafka::{ProduceRecord, Producer, ensure_topic};
use sluice_host::search::Partitioner;
use sluice_tests::{broker, fresh_topic};

use super::Answered;
use crate::handler::AppConfig;

const KEY: &str = "search-key-0123456789abcdef012345678";

fn app() -> AppConfig {
    super::data_app(KEY, FetchLimits::default())
}

async fn get(app: &AppConfig, query: &str) -> Answered {
    super::get_with_key(app, KEY, &format!("/api/search?{query}")).await
}

/// Eight partitions, 50 records each keyed `user-<i>` and placed where a
/// Java producer would put them (murmur2); values `{"i": i, "even": bool}`.
fn topic() -> String {
    let config = broker();
    let topic = fresh_topic("api-search");
    ensure_topic(&config, &topic, 8).unwrap();
    let records: Vec<ProduceRecord> = (0..400)
        .map(|i| {
            let key = format!("user-{i}");
            ProduceRecord {
                timestamp: None,
                topic: topic.clone(),
                partition: Partitioner::Murmur2.partition(key.as_bytes(), 8),
                key: Some(key.into_bytes()),
                value: Some(json!({"i": i, "even": i % 2 == 0}).to_string().into_bytes()),
                headers: Vec::new(),
            }
        })
        .collect();
    Producer::new(&config).unwrap().send_all(&records).unwrap();
    topic
}

#[tokio::test]
async fn a_key_is_found_in_its_partitioners_partition_and_the_answer_says_which() {
    let app = app();
    let topic = topic();
    let partition = Partitioner::Murmur2.partition(b"user-123", 8).unwrap();
    let answered = get(&app, &format!("topic={topic}&key=user-123")).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let body = answered.json();
    assert_eq!(body["returned"], 1, "{body}");
    assert_eq!(body["records"][0]["partition"], partition);
    assert_eq!(body["records"][0]["value"]["i"], 123);
    assert!(
        body["records"][0]["matched_by"]
            .as_array()
            .unwrap()
            .contains(&json!("murmur2")),
        "{body}"
    );
    assert_eq!(body["key_partitions"]["murmur2"], partition);
    assert!(body["partitions"].as_array().unwrap().len() <= 2, "{body}");
    assert_eq!(body["complete"], true);
    assert_eq!(body["cursor"], Value::Null);
}

/// Keys that are not text: big-endian longs (Kafka's `LongSerializer`)
/// placed by a Go producer's FNV-1a (librdkafka's `fnv1a`), asked for in
/// hex and in base64, each record's key shown back the same way.
#[tokio::test]
async fn a_key_that_is_not_text_is_asked_in_hex_or_base64_and_shown_so() {
    let app = app();
    let config = broker();
    let topic = fresh_topic("api-search-binary");
    ensure_topic(&config, &topic, 8).unwrap();
    let records: Vec<ProduceRecord> = (0..200u64)
        .map(|i| {
            let key = i.to_be_bytes().to_vec();
            ProduceRecord {
                timestamp: None,
                topic: topic.clone(),
                partition: Partitioner::Fnv1a.partition(&key, 8),
                key: Some(key),
                value: Some(json!({"i": i}).to_string().into_bytes()),
                headers: Vec::new(),
            }
        })
        .collect();
    Producer::new(&config).unwrap().send_all(&records).unwrap();
    let partition = Partitioner::Fnv1a
        .partition(&42u64.to_be_bytes(), 8)
        .unwrap();
    for (query, field, shown) in [
        ("key_hex=000000000000002A", "key_hex", "000000000000002a"),
        ("key_base64=AAAAAAAAACo%3D", "key_base64", "AAAAAAAAACo="),
        ("key_base64=AAAAAAAAACo", "key_base64", "AAAAAAAAACo="),
    ] {
        let answered = get(&app, &format!("topic={topic}&{query}&partitioner=fnv1a")).await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
        let body = answered.json();
        assert_eq!(body["returned"], 1, "{query}: {body}");
        let record = &body["records"][0];
        assert_eq!(record["value"]["i"], 42, "{query}: {body}");
        assert_eq!(record[field], shown, "{query}: {body}");
        assert_eq!(record["matched_by"], json!(["fnv1a"]), "{query}: {body}");
        assert_eq!(body["key_partitions"], json!({"fnv1a": partition}));
        assert_eq!(body["partitions"], json!([partition]), "one partition read");
        assert_eq!(
            body["scanned"],
            records
                .iter()
                .filter(|r| r.partition == Some(partition))
                .count()
        );
    }
    // By default (murmur2 and consistent_random) the partitions read are
    // others, unless they happen to be the same.
    let answered = get(&app, &format!("topic={topic}&key_hex=000000000000002a")).await;
    let body = answered.json();
    let defaults: Vec<i32> = Partitioner::DEFAULT
        .iter()
        .filter_map(|p| p.partition(&42u64.to_be_bytes(), 8))
        .collect();
    assert_eq!(
        body["returned"],
        u64::from(defaults.contains(&partition)),
        "{body}"
    );
}

#[tokio::test]
async fn a_filter_pages_through_every_match_with_the_cursor() {
    let app = app();
    let topic = topic();
    let filter = "value.even == true and value.i < 100";
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut query = format!("topic={topic}&limit=7&where={}", urlencode(filter));
        if let Some(cursor) = &cursor {
            query.push_str(&format!("&cursor={}", urlencode(cursor)));
        }
        let answered = get(&app, &query).await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
        let body = answered.json();
        for record in body["records"].as_array().unwrap() {
            let i = record["value"]["i"].as_i64().unwrap();
            assert!(i % 2 == 0 && i < 100, "{record}");
            assert!(seen.insert(i), "{i} twice");
        }
        match body["cursor"].as_str() {
            Some(next) => {
                assert_eq!(body["stopped_by"], "limit", "{body}");
                cursor = Some(next.to_owned());
            }
            None => {
                assert_eq!(body["complete"], true);
                break;
            }
        }
    }
    assert_eq!(seen, (0..100).step_by(2).collect::<BTreeSet<i64>>());
}

#[tokio::test]
async fn newest_first_answers_in_descending_offsets() {
    let app = app();
    let topic = topic();
    let answered = get(
        &app,
        &format!("topic={topic}&partition=3&order=newest&limit=1000"),
    )
    .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let body = answered.json();
    let offsets: Vec<i64> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect();
    assert!(!offsets.is_empty());
    let count = offsets.len() as i64;
    assert_eq!(offsets, (0..count).rev().collect::<Vec<i64>>());
    assert_eq!(body["order"], "newest_first");
}

#[tokio::test]
async fn bad_parameters_are_refused_naming_them() {
    let app = app();
    let topic = topic();
    let cases = [
        ("where=value.a%20%3D%201", "the filter at position 9 (`=`)"),
        (
            "where=(value.a%20%3D%3D%201",
            "position 14 (`end of filter`)",
        ),
        ("key=k&partitioner=sticky", "`partitioner`: `sticky`"),
        (
            "key=k&partitioner=murmur2,random",
            "`partitioner`: `random` puts keys in any partition",
        ),
        (
            "key_hex=zz",
            "`key_hex`: `zz` is not hex: Invalid character 'z'",
        ),
        (
            "key_hex=abc",
            "`key_hex`: `abc` is not hex: Odd number of digits",
        ),
        ("key_base64=a%2Ab", "`key_base64`: `a*b` is not base64"),
        ("key=a&key_hex=61", "`key` and `key_hex`: give the key once"),
        ("order=sideways", "`order`: `sideways`"),
        ("cursor=somewhere", "`cursor`"),
        ("max_seconds=-1", "`max_seconds`"),
        ("partition=x", "`partition`"),
        ("from_timestamp=yesterday", "`from_timestamp`"),
    ];
    for (query, expected) in cases {
        let answered = get(&app, &format!("topic={topic}&{query}")).await;
        assert_eq!(
            answered.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            answered.text()
        );
        assert!(
            answered.text().contains(expected),
            "{query}: {}",
            answered.text()
        );
    }
    let answered = get(&app, &format!("topic={topic}&partition=99")).await;
    assert_eq!(
        answered.status,
        StatusCode::NOT_FOUND,
        "{}",
        answered.text()
    );
}

/// A query parameter's value, percent-encoded.
fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The page's search box in headless Chromium: a key search shows the
/// record, the partitioner that placed it, and how much was looked at.
#[tokio::test]
async fn the_page_searches_by_key_and_filter_in_chromium() {
    let topic = topic();
    let partition = Partitioner::Murmur2.partition(b"user-42", 8).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(axum::serve(listener, crate::handler::router(app())).into_future());
    let filter = urlencode("value.i > 40");
    let url = format!(
        "http://127.0.0.1:{port}/?topic={topic}&search_key=user-42&where={filter}&run=search#key={KEY}"
    );
    let dom = tokio::task::spawn_blocking(move || super::render_page(&url, "search-page.png"))
        .await
        .unwrap();
    server.abort();
    assert!(dom.contains("1 records found"), "status line in: {dom}");
    assert!(
        dom.contains(&format!("murmur2 puts the key in partition {partition}")),
        "{dom}"
    );
    assert!(
        dom.contains("user-42 (murmur2"),
        "the partitioner beside the key: {dom}"
    );
    assert!(dom.contains(r#"{"i":42,"even":true}"#), "the value: {dom}");
}
