//! `GET /api/topics` in-process against the real broker: topics with their
//! partitions and offsets, a page at a time in name order, the server's
//! cap on a page, bad parameters named, and the key required.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use sluice_host::fetch::FetchLimits;
use sluice_host::kafka::{MAX_TOPICS, ensure_topic};
use sluice_tests::{broker, fresh_topic, produce_to};

use super::{Answered, answer};
use crate::handler::AppConfig;

const KEY: &str = "topics-key-0123456789abcdef012345678";

fn app() -> AppConfig {
    super::data_app(KEY, FetchLimits::default())
}

async fn get(app: &AppConfig, query: &str) -> Answered {
    super::get_with_key(app, KEY, &format!("/api/topics?{query}")).await
}

#[tokio::test]
async fn topics_come_with_their_partitions_offsets_a_page_at_a_time() {
    let app = app();
    let config = broker();
    // Three topics sharing a fresh prefix, so no other test's show up.
    let prefix = fresh_topic("picker");
    let names: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|s| format!("{prefix}-{s}"))
        .collect();
    ensure_topic(&config, &names[0], 1).unwrap();
    ensure_topic(&config, &names[1], 3).unwrap();
    ensure_topic(&config, &names[2], 2).unwrap();
    produce_to(&config, &names[0], 0, &["1", "2", "3", "4"]);
    produce_to(&config, &names[1], 2, &["1", "2"]);

    let answered = get(&app, &format!("contains={}", prefix.to_uppercase())).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let body = answered.json();
    assert_eq!(body["matching"], 3, "{body}");
    assert_eq!(body["next_after"], json!(null), "{body}");
    let topics = body["topics"].as_array().unwrap();
    let listed: Vec<&str> = topics.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(listed, names, "in name order, matched case-insensitively");
    assert_eq!(
        topics[0]["partitions"],
        json!([{"partition": 0, "low": 0, "high": 4}])
    );
    assert_eq!(topics[0]["records"], 4);
    assert_eq!(
        topics[1]["partitions"],
        json!([
            {"partition": 0, "low": 0, "high": 0},
            {"partition": 1, "low": 0, "high": 0},
            {"partition": 2, "low": 0, "high": 2},
        ])
    );
    assert_eq!(topics[2]["partitions"].as_array().unwrap().len(), 2);

    // Two per page: the next page starts after the last name.
    let first = get(&app, &format!("contains={prefix}&limit=2"))
        .await
        .json();
    assert_eq!(first["topics"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["next_after"], names[1], "{first}");
    let rest = get(
        &app,
        &format!("contains={prefix}&limit=2&after={}", names[1]),
    )
    .await
    .json();
    assert_eq!(rest["topics"][0]["name"], names[2], "{rest}");
    assert_eq!(rest["topics"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["next_after"], json!(null), "{rest}");
}

#[tokio::test]
async fn a_page_larger_than_the_servers_cap_is_capped_and_bad_parameters_are_named() {
    let app = app();
    let answered = get(&app, "limit=1000000").await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let body = answered.json();
    assert_eq!(body["limit"], MAX_TOPICS, "{body}");
    assert!(body["topics"].as_array().unwrap().len() <= MAX_TOPICS);
    // The cluster's own topics only when asked for.
    assert!(
        body["topics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t["name"].as_str().unwrap().starts_with("__")),
        "{body}"
    );

    for (query, named) in [
        ("limit=0", "`limit`"),
        ("limit=-3", "limit"),
        ("after=no%20spaces", "`after`"),
        ("internal=maybe", "internal"),
    ] {
        let answered = get(&app, query).await;
        assert_eq!(answered.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            answered.text().contains(named),
            "{query}: {}",
            answered.text()
        );
    }
    let long = "x".repeat(250);
    let answered = get(&app, &format!("contains={long}")).await;
    assert_eq!(answered.status, StatusCode::BAD_REQUEST);
    assert!(
        answered.text().contains("`contains`"),
        "{}",
        answered.text()
    );

    let anonymous = Request::get("/api/topics").body(Body::empty()).unwrap();
    assert_eq!(
        answer(&app, anonymous).await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = Request::get("/api/topics")
        .header("x-functions-key", "another-key-0123456789abcdef0123456789")
        .body(Body::empty())
        .unwrap();
    assert_eq!(answer(&app, wrong).await.status, StatusCode::UNAUTHORIZED);
}
