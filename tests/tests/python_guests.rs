//! What only Python guests do, in the real runtime: exceptions as
//! dead-letter reasons, the batch interface's outputs, Python's logging and
//! print() in the host's log, JSON Python cannot write back, the
//! content-enriching example, and what the sandbox withholds from Python
//! code. What Python and Rust guests share is tested once for both in
//! guests.rs, sandbox.rs, language_detect.rs, enrich.rs and hot_reload.rs.

use std::sync::Arc;

use serde_json::{Value, json};
use sluice_host::pipeline::{Routed, Routing, header};
use sluice_host::record::{Header, KafkaRecord, Outcome, OutputRecord};
use sluice_host::runtime::{GuestError, Limits};
use sluice_tests::{host_log, transform};

type RecordResult = Result<Outcome, GuestError>;

/// `values` as one batch (offsets from 100) through a fresh transformer of
/// `guest` with `metadata`.
fn run(guest: &str, metadata: &[(&str, &str)], values: &[Value]) -> Vec<RecordResult> {
    host_log();
    let metadata = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let records: Vec<KafkaRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| KafkaRecord::from_value("in", 100 + i as i64, v.to_string().into_bytes()))
        .collect();
    transform(guest)
        .transformer(Limits::default(), Arc::new(metadata))
        .unwrap()
        .process(&records)
}

/// The single record a result emitted.
fn single(result: &RecordResult) -> &OutputRecord {
    match result {
        Ok(Outcome::Emit(out)) if out.len() == 1 => &out[0],
        other => panic!("expected one emitted record, got {other:?}"),
    }
}

fn json_of(record: &OutputRecord) -> Value {
    serde_json::from_slice(record.value.as_deref().unwrap()).unwrap()
}

fn failed(result: &RecordResult) -> &str {
    match result {
        Ok(Outcome::Fail(reason)) => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn an_exception_dead_letters_its_record_with_the_traceback_last_line() {
    host_log();
    let results = run(
        "misbehave-py",
        &[],
        &[json!({"n": 1}), json!({"do": "raise"}), json!({"n": 3})],
    );
    // The batch function raised on one record: the SDK called it again per
    // record, so the others still come out.
    assert_eq!(json_of(single(&results[0])), json!({"n": 1}));
    assert_eq!(
        failed(&results[1]),
        "ValueError: asked to raise at offset 101"
    );
    assert_eq!(json_of(single(&results[2])), json!({"n": 3}));

    let input = KafkaRecord::from_value("in", 101, br#"{"do":"raise"}"#.to_vec());
    let routing = Routing {
        outputs: vec!["out".into()],
        dead_letter: "in.dlq".into(),
    };
    let mut out = Vec::new();
    let routed = routing.route(
        &transform("misbehave-py"),
        &input,
        results[1].clone(),
        &mut out,
    );
    assert_eq!(routed, Routed::DeadLettered);
    let dead = &out[0];
    assert_eq!(dead.topic, "in.dlq");
    let text = |key: &str| {
        let h = dead.headers.iter().find(|h| h.key == key).unwrap();
        String::from_utf8(h.value.clone().unwrap()).unwrap()
    };
    assert_eq!(text(header::ERROR_KIND), "rejected");
    assert_eq!(
        text(header::ERROR_REASON),
        "ValueError: asked to raise at offset 101"
    );
}

#[test]
fn an_exception_in_the_process_hook_is_the_reason_too() {
    host_log();
    // The example reads its threshold with int(): a bad metadata value
    // raises inside process() for every record with text.
    let message = json!({"id": 1, "content": {"text": "great stay"}});
    let results = run(
        "sentiment-py",
        &[("sentiment_threshold", "many")],
        &[message.clone(), json!({"id": 2})],
    );
    assert_eq!(
        failed(&results[0]),
        "ValueError: invalid literal for int() with base 10: 'many'"
    );
    assert_eq!(json_of(single(&results[1])), json!({"id": 2}));
}

#[test]
fn the_content_example_adds_a_sentiment_and_keeps_everything_else() {
    host_log();
    let texts = [
        (
            "Lovely hotel, friendly staff and a great breakfast",
            "positive",
            3,
        ),
        ("Dirty room, rude staff, the worst stay", "negative", -3),
        ("We arrived on Tuesday", "neutral", 0),
        ("Great location but noisy", "neutral", 0),
    ];
    let messages: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, (text, _, _))| {
            json!({"id": i, "content": {"title": "review", "text": text}, "source": "feed"})
        })
        .collect();
    let mut values = messages.clone();
    values.push(json!({"id": 9, "content": {"title": "no text"}}));
    values.push(json!({"id": 10, "content": {"text": 42}}));
    let results = run("sentiment-py", &[("consumer_name", "reviews")], &values);
    for ((message, (_, sentiment, score)), result) in messages.iter().zip(texts).zip(&results) {
        let out = json_of(single(result));
        let mut expected = message.clone();
        expected["content"]["sentiment"] = sentiment.into();
        expected["content"]["sentiment_score"] = score.into();
        // Field for field and in order: the new fields last in content.
        assert_eq!(out.to_string(), expected.to_string());
    }
    assert_eq!(json_of(single(&results[4])), values[4]);
    assert_eq!(failed(&results[5]), "content.text is not a string");

    // The pipeline metadata changes the threshold.
    let strict = run(
        "sentiment-py",
        &[("sentiment_threshold", "4")],
        &messages[..1],
    );
    assert_eq!(
        json_of(single(&strict[0]))["content"]["sentiment"],
        "neutral"
    );
}

#[test]
fn batch_outputs_choose_topic_key_and_headers() {
    host_log();
    let mut record = KafkaRecord::from_value(
        "in",
        5,
        json!({"do": "route", "topic": "audit", "key": "user-7", "value": {"ok": true},
               "headers": {"source": "sluice", "empty": null}})
        .to_string()
        .into_bytes(),
    );
    record.key = Some(b"input-key".to_vec());
    record.headers = vec![Header {
        key: "trace".into(),
        value: Some(b"abc".to_vec()),
    }];
    let mut echo = KafkaRecord::from_value("in", 6, br#"{"n": 6}"#.to_vec());
    echo.key = record.key.clone();
    echo.headers = record.headers.clone();
    let results = transform("misbehave-py")
        .transformer(Limits::default(), Arc::default())
        .unwrap()
        .process(&[record.clone(), echo]);

    let routed = single(&results[0]);
    assert_eq!(routed.topic.as_deref(), Some("audit"));
    assert_eq!(routed.key.as_deref(), Some(&b"user-7"[..]));
    assert_eq!(json_of(routed), json!({"ok": true}));
    let headers: Vec<(&str, Option<&[u8]>)> = routed
        .headers
        .iter()
        .map(|h| (h.key.as_str(), h.value.as_deref()))
        .collect();
    assert_eq!(headers, [("source", Some(&b"sluice"[..])), ("empty", None)]);

    // A plain value keeps the input's key and headers and goes everywhere.
    let echoed = single(&results[1]);
    assert_eq!(echoed.topic, None);
    assert_eq!(echoed.key, record.key);
    assert_eq!(echoed.headers.len(), 1);
    assert_eq!(echoed.headers[0].key, "trace");
}

#[test]
fn python_logging_and_print_reach_the_host_log() {
    host_log();
    let results = run(
        "misbehave-py",
        &[],
        &[
            json!({"do": "log", "message": "warned from Python"}),
            json!({"do": "print", "message": "printed from Python"}),
        ],
    );
    assert_eq!(results, vec![Ok(Outcome::Drop), Ok(Outcome::Drop)]);
    let text = host_log().text();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{text}"))
            .to_owned()
    };
    let warned = line("warned from Python");
    assert!(
        warned.contains("WARN") && warned.contains("misbehave-py"),
        "{warned}"
    );
    assert!(line("printed from Python").contains("INFO"));
}

#[test]
fn values_python_cannot_read_or_write_back_fail_alone() {
    host_log();
    let guest = "misbehave-py";
    let values: Vec<Vec<u8>> = vec![
        br#"{"a": NaN}"#.to_vec(),
        "\u{feff}{\"a\": 1}".as_bytes().to_vec(),
        vec![b'{', b'"', 0xff, b'"', b':', b'1', b'}'],
        // Echoed back, 1e400 is infinity to Python: not JSON.
        br#"{"a": 1e400}"#.to_vec(),
        br#"{"n": 1}"#.to_vec(),
        format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
    ];
    let records: Vec<KafkaRecord> = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| KafkaRecord::from_value("in", i as i64, v))
        .collect();
    let results = transform(guest)
        .transformer(Limits::default(), Arc::default())
        .unwrap()
        .process(&records);
    for i in [0, 1, 2, 5] {
        let reason = failed(&results[i]);
        assert!(
            reason.starts_with("value is not valid JSON"),
            "{i}: {reason}"
        );
    }
    assert!(
        failed(&results[5]).contains("nested more than 128 levels"),
        "refused before the parser runs out of stack"
    );
    assert_eq!(
        failed(&results[3]),
        "ValueError: Out of range float values are not JSON compliant: inf"
    );
    assert_eq!(json_of(single(&results[4])), json!({"n": 1}));
}

#[test]
fn the_sandbox_withholds_clocks_files_network_threads_and_late_imports() {
    host_log();
    let probes = |results: Vec<RecordResult>| json_of(single(&results[0]));
    let first = probes(run("misbehave-py", &[], &[json!({"do": "probe"})]));
    let ok = |name: &str| first[name]["ok"].clone();
    let error = |name: &str| {
        first[name]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} worked: {}", first[name]))
            .to_owned()
    };
    assert_eq!(ok("time"), json!(0.0), "the wall clock reads the epoch");
    assert_eq!(ok("now"), "1970-01-01T00:00:00");
    assert_eq!(ok("monotonic"), json!(0.0));
    assert_eq!(ok("sleep"), Value::Null, "sleep returns at once");
    assert_eq!(ok("environ"), json!({}));
    assert_eq!(ok("urandom"), "5a5a5a5a", "the host's fixed random bytes");
    assert_eq!(
        ok("strptime"),
        "2017-08-13T00:00:00",
        "the SDK imports _strptime"
    );
    assert!(error("open").starts_with("FileNotFoundError"));
    assert!(error("listdir").starts_with("FileNotFoundError"));
    assert!(error("thread").starts_with("RuntimeError: can't start new thread"));
    assert!(error("subprocess").contains("wasi does not support processes"));
    assert!(error("socket").starts_with("PermissionError"));
    assert_eq!(
        error("import_unused_stdlib"),
        "ModuleNotFoundError: No module named 'fractions'"
    );
    assert_eq!(
        error("import_missing"),
        "ModuleNotFoundError: No module named 'numpy'"
    );

    // Python's random module starts from the state it had when the
    // component was built: every instance repeats the same numbers.
    let second = probes(run("misbehave-py", &[], &[json!({"do": "probe"})]));
    assert_eq!(second["random"], first["random"]);
}
