//! `POST /Enrich` with the Kafka-trigger payloads the extension sends
//! (single and batch, double-encoded, base64 headers), in-process against
//! the real broker.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sluice_host::enrich::PipelineDefinition;
use sluice_host::kafka::{KafkaConfig, ensure_topic};
use sluice_host::pipeline::header;
use sluice_tests::{broker, fresh_topic, header_text, read_all};

use super::call;
use crate::handler::{AppConfig, EnrichConfig, PayloadLimit};

struct Pipeline {
    _dir: tempfile::TempDir,
    config: AppConfig,
    input: String,
    output: String,
    dead_letter: String,
}

fn pipeline(kafka: KafkaConfig) -> Pipeline {
    pipeline_limited(kafka, json!({"deadline_ms": 300}))
}

/// A pipeline with the `limits` given.
fn pipeline_limited(kafka: KafkaConfig, limits: Value) -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dead_letter) = (
        fresh_topic("trigger-in"),
        fresh_topic("trigger-out"),
        fresh_topic("trigger-dlq"),
    );
    let definition = json!({
        "name": "trigger", "inputs": [input], "outputs": [output],
        "dead_letter": dead_letter, "transform": "misbehave",
        "limits": limits,
    });
    let definition = PipelineDefinition::from_value(&definition).unwrap();
    // Provisioned beforehand, as the app's topics are (the trigger does not
    // create them).
    for topic in [&output, &dead_letter] {
        ensure_topic(&broker(), topic, 1).unwrap();
    }
    let config = AppConfig {
        topics: dir.path().join("topics.json"),
        connections: dir.path().join("connections.json"),
        out: None,
        enrich: Some(EnrichConfig::new(definition, kafka).unwrap()),
        admin: None,
        data: None,
        transforms: super::folder_transforms(),
        metrics: None,
        access: super::access(super::ADMIN_KEY),
        payload_limit: PayloadLimit::built_in(),
    };
    Pipeline {
        _dir: dir,
        config,
        input,
        output,
        dead_letter,
    }
}

/// One event as the extension serialises it (a JSON string).
fn kevent(topic: &str, offset: i64, value: &str) -> String {
    json!({
        "Offset": offset, "Partition": 0, "Topic": topic,
        "Timestamp": "2026-11-22T01:00:00.000Z", "Key": null, "Value": value,
        "Headers": [{"Key": "trace-id", "Value": STANDARD.encode(format!("t{offset}"))}],
    })
    .to_string()
}

fn metadata(topic: &str) -> Value {
    // Metadata values arrive as strings, JSON-encoded strings among them.
    json!({"Topic": format!("\"{topic}\""), "Partition": "0", "Offset": "0",
           "sys": {"MethodName": "Enrich", "UtcNow": "2026-11-22T01:00:00Z"}})
}

#[tokio::test]
async fn a_single_event_is_enriched_and_produced() {
    let p = pipeline(broker());
    let body = json!({
        "Data": {"kevent": kevent(&p.input, 0, r#"{"id":1}"#)},
        "Metadata": metadata(&p.input),
    });
    let (status, response) = call(p.config.clone(), "/Enrich", body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["ReturnValue"]["read"], 1);
    assert_eq!(response["ReturnValue"]["produced"], 1);
    let out = read_all(&broker(), &p.output);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].value.as_deref(), Some(&br#"{"id":1}"#[..]));
    assert_eq!(
        header_text(&out[0], "trace-id"),
        "t0",
        "base64 header decoded"
    );
    assert!(header_text(&out[0], header::TRANSFORM).starts_with("misbehave@"));
}

#[tokio::test]
async fn a_batch_with_poison_records_dead_letters_them_and_answers_200() {
    let p = pipeline(broker());
    // One partition: the outputs carry no key, and their order is checked.
    ensure_topic(&broker(), &p.output, 1).unwrap();
    let events = vec![
        kevent(&p.input, 10, r#"{"id":1}"#),
        kevent(&p.input, 11, "not json at all"),
        kevent(&p.input, 12, r#"{"do":"trap"}"#),
        "{\"Offset\": 13".to_owned(),
        kevent(&p.input, 14, r#"{"do":"loop"}"#),
        kevent(&p.input, 15, r#"{"id":2}"#),
    ];
    // Cardinality MANY: the list itself arrives as a JSON string.
    let body = json!({
        "Data": {"kevents": Value::from(events).to_string()},
        "Metadata": metadata(&p.input),
    });
    let (status, response) = call(p.config.clone(), "/Enrich", body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let result = &response["ReturnValue"];
    assert_eq!(
        (result["read"].as_u64(), result["unreadable"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(
        result["dead_lettered"], 4,
        "three poison records and the unreadable event"
    );

    let config = broker();
    let ids: Vec<Value> = read_all(&config, &p.output)
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(r.value.as_deref().unwrap()).unwrap()["id"].clone()
        })
        .collect();
    assert_eq!(ids, [json!(1), json!(2)]);
    let mut dead: Vec<(String, String)> = read_all(&config, &p.dead_letter)
        .iter()
        .map(|r| {
            (
                header_text(r, header::ERROR_KIND).to_owned(),
                header_text(r, header::SOURCE_OFFSET).to_owned(),
            )
        })
        .collect();
    dead.sort();
    assert_eq!(
        dead,
        [
            ("deadline".into(), "14".into()),
            ("decode".into(), "11".into()),
            ("trap".into(), "12".into()),
            ("trigger-payload".into(), "-1".into()),
        ]
    );
}

/// 500 events, every fifth one looping (`{"do":"loop"}`): a batch whose
/// records, run one by one with the full deadline each, take 100 deadlines.
fn batch_with_100_loops(input: &str) -> (String, Vec<i64>) {
    let events: Vec<String> = (0..500)
        .map(|i| match i % 5 == 2 {
            true => kevent(input, i, &json!({"do": "loop", "i": i}).to_string()),
            false => kevent(input, i, &json!({"i": i}).to_string()),
        })
        .collect();
    let body = json!({
        "Data": {"kevents": Value::from(events).to_string()},
        "Metadata": metadata(input),
    });
    let loops = (0..500).filter(|i| i % 5 == 2).collect();
    (body.to_string(), loops)
}

/// `(kind, source offset)` of every dead letter in `topic`, sorted.
fn dead_letters(topic: &str) -> Vec<(String, i64)> {
    let mut dead: Vec<(String, i64)> = read_all(&broker(), topic)
        .iter()
        .map(|r| {
            (
                header_text(r, header::ERROR_KIND).to_owned(),
                header_text(r, header::SOURCE_OFFSET).parse().unwrap(),
            )
        })
        .collect();
    dead.sort();
    dead
}

/// With a budget that holds all hundred deadlines (the default, 60 s),
/// one invocation judges every loop: each dead-lettered once on its
/// deadline, every other record produced once, in order.
#[tokio::test]
async fn a_batch_with_100_looping_records_dead_letters_each_once_and_produces_the_rest() {
    let p = pipeline_limited(broker(), json!({"deadline_ms": 100}));
    let (body, loops) = batch_with_100_loops(&p.input);
    let (status, response) = call(p.config.clone(), "/Enrich", body).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let result = &response["ReturnValue"];
    assert_eq!(
        (result["read"].as_u64(), result["produced"].as_u64()),
        (Some(500), Some(400)),
        "{result}"
    );
    let produced: Vec<i64> = read_all(&broker(), &p.output)
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(r.value.as_deref().unwrap()).unwrap()["i"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        produced,
        (0..500).filter(|i| i % 5 != 2).collect::<Vec<_>>()
    );
    let expected: Vec<(String, i64)> = loops.iter().map(|o| ("deadline".into(), *o)).collect();
    assert_eq!(dead_letters(&p.dead_letter), expected);
}

/// With a 1 s budget the invocation answers within the budget and one
/// deadline (the produce and a busy machine get 2 s more here), where one
/// by one with the full deadline each it took 10 s, past what a function
/// may run. There is no later step on the same instance to carry records
/// to, so the ones the budget left untried are dead-lettered as `budget`,
/// the reason naming the budget and the loops that spent it: every event
/// ends in the output or the dead-letter topic exactly once, and a loop is
/// never dead-lettered as `deadline` unless it ran its full deadline.
#[tokio::test]
async fn what_the_budget_leaves_untried_is_dead_lettered_naming_the_budget_and_the_loops() {
    let (deadline, budget) = (Duration::from_millis(100), Duration::from_millis(1000));
    let p = pipeline_limited(broker(), json!({"deadline_ms": 100, "budget_ms": 1000}));
    let (body, loops) = batch_with_100_loops(&p.input);
    let started = Instant::now();
    let (status, response) = call(p.config.clone(), "/Enrich", body).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{response}");
    assert!(
        took < budget + deadline + Duration::from_secs(2),
        "answered in {took:?}"
    );

    let produced: Vec<i64> = read_all(&broker(), &p.output)
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(r.value.as_deref().unwrap()).unwrap()["i"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let dead = dead_letters(&p.dead_letter);
    let overran: Vec<i64> = dead
        .iter()
        .filter(|(kind, _)| kind == "deadline")
        .map(|(_, offset)| *offset)
        .collect();
    let untried: Vec<i64> = dead
        .iter()
        .filter(|(kind, _)| kind == "budget")
        .map(|(_, offset)| *offset)
        .collect();
    assert_eq!(overran.len() + untried.len(), dead.len(), "{dead:?}");
    assert!(
        !overran.is_empty() && !untried.is_empty(),
        "some loops judged, some records left: {dead:?}"
    );
    assert!(
        overran.iter().all(|o| loops.contains(o)),
        "only loops overran: {overran:?}"
    );
    let mut every: Vec<i64> = produced
        .iter()
        .chain(&overran)
        .chain(&untried)
        .copied()
        .collect();
    every.sort();
    assert_eq!(every, (0..500).collect::<Vec<_>>(), "each event once");
    let first_untried = untried.iter().min().copied().unwrap_or_default();
    assert!(
        produced.iter().all(|i| *i < first_untried) && overran.iter().all(|o| *o < first_untried),
        "the records tried come before the ones left"
    );

    let reason = read_all(&broker(), &p.dead_letter)
        .into_iter()
        .find(|r| header_text(r, header::ERROR_KIND) == "budget")
        .map(|r| header_text(&r, header::ERROR_REASON).to_owned())
        .unwrap();
    assert!(
        reason.contains("time budget of 1000 ms (limits.budget_ms)")
            && reason.contains("full deadline of 100 ms")
            && reason.contains(&format!("topic {} partition 0 offset 2", p.input)),
        "{reason}"
    );
}

#[tokio::test]
async fn without_a_pipeline_the_route_says_what_to_set() {
    let mut p = pipeline(broker());
    p.config.enrich = None;
    let body = json!({"Data": {"kevent": kevent("t", 0, "{}")}, "Metadata": {}});
    let (status, response) = call(p.config, "/Enrich", body.to_string()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response["ReturnValue"]["error"]
            .as_str()
            .unwrap()
            .contains("SLUICE_PIPELINE")
    );
}

#[tokio::test]
async fn an_unreachable_broker_answers_non_2xx_so_the_batch_is_retried() {
    let mut kafka = KafkaConfig::new("127.0.0.1:1").with("message.timeout.ms", "2000");
    kafka.request_timeout = std::time::Duration::from_secs(2);
    let p = pipeline(kafka);
    ensure_topic(&broker(), &p.input, 1).unwrap();
    let body = json!({"Data": {"kevent": kevent(&p.input, 0, r#"{"id":1}"#)}, "Metadata": {}});
    let (status, response) = call(p.config, "/Enrich", body.to_string()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{response}");
}

#[test]
fn a_pipeline_with_a_join_is_refused_at_start_pointing_to_sluice_enrich() {
    let definition = PipelineDefinition::from_value(&json!({
        "name": "joined", "inputs": ["a", "b"], "outputs": ["out"], "dead_letter": "dlq",
        "transform": "misbehave", "join": {"key": "id", "timeout_ms": 1000},
    }))
    .unwrap();
    let error = EnrichConfig::new(definition, broker()).unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("field `join`") && message.contains("sluice enrich --pipeline"),
        "{message}"
    );
}

/// A value of about `size` bytes of JSON text, numbered `i`.
fn sized_value(i: usize, size: usize) -> String {
    let pad = "x".repeat(size.saturating_sub(40));
    json!({"id": i, "pad": pad}).to_string()
}

#[tokio::test]
async fn a_full_batch_of_500_events_of_4_kb_is_accepted_and_produced() {
    let p = pipeline(broker());
    let events: Vec<String> = (0..500)
        .map(|i| kevent(&p.input, i, &sized_value(i as usize, 4096)))
        .collect();
    let body = json!({
        "Data": {"kevents": Value::from(events).to_string()},
        "Metadata": metadata(&p.input),
    })
    .to_string();
    assert!(body.len() > 2 << 20, "past axum's default: {}", body.len());
    let (status, response) = call(p.config.clone(), "/Enrich", body).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["ReturnValue"]["read"], 500, "{response}");
    assert_eq!(response["ReturnValue"]["produced"], 500, "{response}");
    assert_eq!(read_all(&broker(), &p.output).len(), 500);
}

/// Past the limit the batch size makes (host.json's maxBatchSize records
/// of 1 MiB), a payload is refused before it is read, with a 413 that says
/// which setting to lower. (Reading a body without a declared length up to
/// the limit is `invocation.rs`'s test, on a small limit.)
#[tokio::test]
async fn a_payload_past_the_limit_is_a_413_naming_max_batch_size() {
    let p = pipeline(broker());
    let limit = PayloadLimit::built_in();
    for path in ["/Enrich", "/Export"] {
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .header("x-functions-key", super::ADMIN_KEY)
            .header("content-length", (limit.bytes + 1).to_string())
            .body(axum::body::Body::empty())
            .unwrap();
        let answered = super::answer(&p.config, request).await;
        assert_eq!(answered.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let error = answered.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains(&format!("maxBatchSize {}", limit.max_batch_size))
                && error.contains(&limit.bytes.to_string()),
            "{path}: {error}"
        );
    }
    assert!(read_all(&broker(), &p.output).is_empty());
}

/// Promise: an output the broker refuses for good (here: grown past
/// librdkafka's `message.max.bytes`) goes to the dead-letter topic with the
/// reason and its source, its value cut to fit and saying so; the batch
/// goes on and the invocation answers 200.
#[tokio::test]
async fn an_output_too_large_for_the_broker_is_dead_lettered_and_the_batch_goes_on() {
    let p = pipeline(broker());
    let events = vec![
        kevent(&p.input, 20, r#"{"id":1}"#),
        kevent(&p.input, 21, r#"{"do":"grow","bytes":1100000}"#),
        kevent(&p.input, 22, r#"{"id":2}"#),
    ];
    let body = json!({
        "Data": {"kevents": Value::from(events).to_string()},
        "Metadata": metadata(&p.input),
    });
    let (status, response) = call(p.config.clone(), "/Enrich", body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["ReturnValue"]["produced"], 2, "{response}");
    assert_eq!(response["ReturnValue"]["dead_lettered"], 1, "{response}");
    assert_eq!(read_all(&broker(), &p.output).len(), 2);
    let dead = read_all(&broker(), &p.dead_letter);
    assert_eq!(dead.len(), 1);
    assert_eq!(header_text(&dead[0], header::ERROR_KIND), "produce");
    assert_eq!(header_text(&dead[0], header::SOURCE_OFFSET), "21");
    assert_eq!(header_text(&dead[0], header::SOURCE_TOPIC), p.input);
    let reason = header_text(&dead[0], header::ERROR_REASON);
    assert!(
        reason.contains("too large") || reason.contains("Message size"),
        "{reason}"
    );
    assert_eq!(
        header_text(&dead[0], sluice_host::pipeline::deliver::TRUNCATED_HEADER),
        "1100000"
    );
    assert!(dead[0].value.as_ref().unwrap().len() < 1_000_000);
}

/// Promise: the Kafka-trigger route follows the registry as a worker does:
/// a version activated through the app's own admin API is used by the
/// next batches of the same warm instance, within the reload interval
/// and the time to load it.
#[tokio::test]
async fn a_version_activated_through_the_admin_api_is_used_by_the_next_trigger_batches() {
    use axum::body::Body;
    use axum::http::Request;

    let mut p = pipeline(broker());
    let definition = json!({
        "name": "followed", "inputs": [p.input], "outputs": [p.output],
        "dead_letter": p.dead_letter, "transform": "followed",
    });
    let (app, _registry) = registry_app(&mut p, definition);
    let send = |request: Request<Body>| send(&app, request);
    let upload = |component: Vec<u8>| {
        Request::put("/api/transforms/followed?activate=true")
            .header("x-functions-key", super::ADMIN_KEY)
            .body(Body::from(component))
            .unwrap()
    };
    let batch = |offset: i64| {
        let body = json!({
            "Data": {"kevent": kevent(&p.input, offset, r#"{"id":1}"#)},
            "Metadata": metadata(&p.input),
        });
        trigger(&body)
    };
    let (status, v1) = send(upload(sluice_tests::guest("misbehave"))).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    let (status, answer) = send(batch(0)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let stamp = |version: &Value| format!("followed@{}", &version.as_str().unwrap()[..12]);
    let last_stamp = || {
        let out = read_all(&broker(), &p.output);
        header_text(out.last().unwrap(), header::TRANSFORM).to_owned()
    };
    assert_eq!(last_stamp(), stamp(&v1["version"]));

    let (status, v2) = send(upload(sluice_tests::guest("language-detect"))).await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    let started = Instant::now();
    let mut offset = 1;
    loop {
        let (status, answer) = send(batch(offset)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        if last_stamp() == stamp(&v2["version"]) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the trigger still runs {} a minute after v2 was activated",
            last_stamp()
        );
        offset += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("v2 used after {:?}", started.elapsed());
}

/// Promise: the Kafka-trigger route shadows as a worker does: a shadow
/// started through the app's admin API runs on the next batches of the
/// same warm instance, `GET /api/transforms/{name}/shadow` reports exactly
/// the records it would change, and only the active version's records are
/// produced.
#[tokio::test]
async fn the_trigger_route_runs_the_shadow_named_through_the_admin_api() {
    use axum::body::Body;
    use axum::http::Request;

    /// Each batch holds stays of 1 to 20 days; stay-category-v2 puts the
    /// four of 11 to 14 days in another category.
    const BATCH: i64 = 20;
    let mut p = pipeline(broker());
    let definition = json!({
        "name": "shadowed", "inputs": [p.input], "outputs": [p.output],
        "dead_letter": p.dead_letter, "transform": "stay",
        "limits": {"shadow_cpu_percent": 1000},
    });
    let (app, _registry) = registry_app(&mut p, definition);
    let send = |request: Request<Body>| send(&app, request);
    let admin = |method: &str, path: &str, body: Vec<u8>| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("x-functions-key", super::ADMIN_KEY)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let batch = |first: i64| {
        let events: Vec<String> = (0..BATCH)
            .map(|day| {
                let value = json!({"id": first + day, "srch_ci": "2017-08-01",
                                   "srch_co": format!("2017-08-{:02}", day + 2)});
                kevent(&p.input, first + day, &value.to_string())
            })
            .collect();
        let body = json!({
            "Data": {"kevents": Value::from(events).to_string()},
            "Metadata": metadata(&p.input),
        });
        trigger(&body)
    };
    let (status, v1) = send(admin(
        "PUT",
        "/api/transforms/stay?activate=true",
        sluice_tests::guest("stay-category"),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    let (status, v2) = send(admin(
        "PUT",
        "/api/transforms/stay",
        sluice_tests::guest("stay-category-v2"),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    let (status, answer) = send(batch(0)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let shadow = json!({"version": v2["version"]}).to_string().into_bytes();
    let (status, manifest) = send(admin("POST", "/api/transforms/stay/shadow", shadow)).await;
    assert_eq!(status, StatusCode::OK, "{manifest}");

    // Batches go on until the instance has shadowed and reported three.
    let started = Instant::now();
    let mut first = BATCH;
    let report = loop {
        let (status, answer) = send(batch(first)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        first += BATCH;
        let (status, answer) = send(admin("GET", "/api/transforms/stay/shadow", vec![])).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        if answer["report"]["compared"].as_i64() >= Some(3 * BATCH) {
            break answer["report"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no shadow report a minute after the shadow was named: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let compared = report["compared"].as_i64().unwrap();
    assert_eq!(compared % BATCH, 0, "whole batches: {report}");
    assert_eq!(
        report["differ"],
        json!({"records": compared / 5}),
        "{report}"
    );
    assert_eq!(report["same"], compared - compared / 5);
    for sample in report["samples"].as_array().unwrap() {
        let day = sample["offset"].as_i64().unwrap() % BATCH + 1;
        assert!((11..=14).contains(&day), "{sample}");
        assert_eq!(sample["path"], "/0/value/stay_category");
    }
    let out = read_all(&broker(), &p.output);
    assert_eq!(out.len() as i64, first, "one output per record");
    let stamp = format!("stay@{}", &v1["version"].as_str().unwrap()[..12]);
    assert!(
        out.iter()
            .all(|r| header_text(r, header::TRANSFORM) == stamp),
        "only the active version's records are produced"
    );
}

/// One warm instance (one router, whose pipeline stays loaded) of an app
/// running `definition` on `p`'s topics, its transforms from a registry of
/// its own (in the folder returned) with the admin API on it.
fn registry_app(p: &mut Pipeline, definition: Value) -> (axum::Router, tempfile::TempDir) {
    use std::sync::Arc;

    use sluice_host::registry::Registry;
    use sluice_host::storage::AzureCredentials;
    use sluice_host::transforms::TransformSource;

    use crate::handler::admin::Admin;

    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(
        Registry::open(
            dir.path().join("registry").to_str().unwrap(),
            &AzureCredentials::default(),
        )
        .unwrap(),
    );
    let definition = PipelineDefinition::from_value(&definition).unwrap();
    p.config.enrich = Some(EnrichConfig::new(definition, broker()).unwrap());
    p.config.transforms = Arc::new(TransformSource::registry(
        sluice_tests::runtime().clone(),
        registry.clone(),
    ));
    p.config.admin = Some(Arc::new(Admin {
        registry,
        runtime: sluice_tests::runtime().clone(),
        kafka: None,
        exports: None,
    }));
    (crate::handler::router(p.config.clone()), dir)
}

/// `POST /Enrich` with `body`, as the Functions host sends it.
fn trigger(body: &Value) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::post("/Enrich")
        .header("content-type", "application/json")
        .header("x-functions-key", super::ADMIN_KEY)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap()
}

/// `request` answered by `app`: its status and JSON body (null if none).
async fn send(
    app: &axum::Router,
    request: axum::http::Request<axum::body::Body>,
) -> (StatusCode, Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
    )
}
