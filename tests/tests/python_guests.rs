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

/// A record of `topic` and `partition` at `offset`, with `value` (None: a
/// tombstone), `key` and `headers` given as text.
fn kafka(
    (topic, partition, offset): (&str, i32, i64),
    timestamp: Option<i64>,
    key: Option<&str>,
    value: Option<Value>,
    headers: &[(&str, Option<&str>)],
) -> KafkaRecord {
    KafkaRecord {
        topic: topic.into(),
        partition,
        offset,
        timestamp,
        key: key.map(|k| k.as_bytes().to_vec()),
        value: value.map(|v| v.to_string().into_bytes()),
        headers: headers
            .iter()
            .map(|(name, value)| Header {
                key: (*name).into(),
                value: value.map(|v| v.as_bytes().to_vec()),
            })
            .collect(),
    }
}

/// A record's key and its headers as (name, value) pairs.
type KeyAndHeaders<'a> = (Option<&'a [u8]>, Vec<(&'a str, Option<&'a [u8]>)>);

fn key_and_headers(record: &OutputRecord) -> KeyAndHeaders<'_> {
    (
        record.key.as_deref(),
        record
            .headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_deref()))
            .collect(),
    )
}

fn input_key_and_headers(record: &KafkaRecord) -> KeyAndHeaders<'_> {
    (
        record.key.as_deref(),
        record
            .headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_deref()))
            .collect(),
    )
}

#[test]
fn each_record_of_a_mixed_batch_reads_its_own_fields() {
    host_log();
    // Absent and empty keys, absent timestamps, a tombstone carrying
    // headers, headers without values, three topic/partition runs and a
    // return to the first: a field read from the wrong place shows.
    let describe = || Some(json!({"do": "describe"}));
    let records = vec![
        kafka(
            ("in", 0, 100),
            Some(1_700_000_000_000),
            Some("k0"),
            describe(),
            &[("trace", Some("t0")), ("empty", None)],
        ),
        kafka(
            ("in", 0, 101),
            Some(1),
            Some("k1"),
            None,
            &[("x", None), ("y", Some("yy"))],
        ),
        kafka(("in", 2, 7), None, None, describe(), &[]),
        kafka(
            ("other", 2, 8),
            None,
            Some(""),
            describe(),
            &[("trace", Some(""))],
        ),
        kafka(
            ("in", 0, 102),
            None,
            Some("k4"),
            Some(json!({"n": 4})),
            &[("a", Some("1")), ("b", Some("2"))],
        ),
        kafka(("in", 0, 103), Some(5), None, describe(), &[("z", None)]),
    ];
    let results = transform("misbehave-py")
        .transformer(Limits::default(), Arc::default())
        .unwrap()
        .process(&records);
    assert_eq!(results.len(), records.len());
    assert_eq!(
        json_of(single(&results[0])),
        json!({"topic": "in", "partition": 0, "offset": 100, "timestamp": 1_700_000_000_000_i64,
               "key": "k0", "headers": [["trace", "t0"], ["empty", null]], "trace": "t0"})
    );
    assert_eq!(
        failed(&results[1]),
        "record has no value (a tombstone), expected JSON"
    );
    assert_eq!(
        json_of(single(&results[2])),
        json!({"topic": "in", "partition": 2, "offset": 7, "timestamp": null,
               "key": null, "headers": [], "trace": null})
    );
    assert_eq!(
        json_of(single(&results[3])),
        json!({"topic": "other", "partition": 2, "offset": 8, "timestamp": null,
               "key": "", "headers": [["trace", ""]], "trace": ""})
    );
    assert_eq!(json_of(single(&results[4])), json!({"n": 4}));
    assert_eq!(
        json_of(single(&results[5])),
        json!({"topic": "in", "partition": 0, "offset": 103, "timestamp": 5,
               "key": null, "headers": [["z", null]], "trace": null})
    );
    // Every output keeps its input's key and headers, copied across as
    // they are: present, empty or absent.
    for i in [0, 2, 3, 4, 5] {
        assert_eq!(
            key_and_headers(single(&results[i])),
            input_key_and_headers(&records[i]),
            "record {i}"
        );
        assert_eq!(single(&results[i]).topic, None, "record {i}");
    }
}

#[test]
fn a_hook_that_reads_only_values_passes_keys_and_headers_through() {
    host_log();
    // stay_category_py's process() reads the value and nothing else: the
    // key and headers it never touched reach the output as they came, on
    // every partition of the batch.
    let booking = |ci: &str| Some(json!({"srch_ci": ci, "srch_co": "2017-08-20"}));
    let records = vec![
        kafka(
            ("in", 0, 1),
            Some(9),
            Some("a"),
            booking("2017-08-19"),
            &[("h", None)],
        ),
        kafka(("in", 1, 1), None, None, booking("2017-08-07"), &[]),
        kafka(
            ("in", 1, 2),
            None,
            Some("c"),
            booking("2017-08-01"),
            &[("h1", Some("v1")), ("h2", None), ("h3", Some(""))],
        ),
        kafka(("in", 3, 0), None, None, None, &[("lost", Some("x"))]),
        kafka(("in", 3, 1), None, Some("e"), booking("x"), &[]),
    ];
    let results = transform("stay-category-py")
        .transformer(Limits::default(), Arc::default())
        .unwrap()
        .process(&records);
    let categories: Vec<Value> = [0, 1, 2, 4]
        .iter()
        .map(|&i| json_of(single(&results[i]))["stay_category"].clone())
        .collect();
    assert_eq!(
        categories,
        [
            "Short stay",
            "Standard extended stay",
            "Long stay",
            "Erroneous data"
        ]
    );
    assert_eq!(
        failed(&results[3]),
        "record has no value (a tombstone), expected JSON"
    );
    for i in [0, 1, 2, 4] {
        assert_eq!(
            key_and_headers(single(&results[i])),
            input_key_and_headers(&records[i]),
            "record {i}"
        );
    }

    // A batch whose function reads no field at all: every record dropped,
    // nothing produced.
    let drops: Vec<KafkaRecord> = (0..50)
        .map(|i| {
            kafka(
                ("in", i % 3, i64::from(i)),
                None,
                Some("k"),
                Some(json!({"do": "drop"})),
                &[("h", None)],
            )
        })
        .collect();
    let results = transform("misbehave-py")
        .transformer(Limits::default(), Arc::default())
        .unwrap()
        .process(&drops);
    assert_eq!(results, vec![Ok(Outcome::Drop); 50]);
}

#[test]
fn json_nested_to_the_limit_is_read_and_one_level_deeper_is_refused() {
    host_log();
    let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    // In an object, so that the echo is one record (a list returned is
    // several): {"a": [[...]]} is one level more than its list.
    let values: Vec<Vec<u8>> = vec![
        format!(r#"{{"a":{}}}"#, nested(127)).into_bytes(),
        format!(r#"{{"a":{}}}"#, nested(128)).into_bytes(),
        // Brackets inside a string are text, not nesting.
        json!({"text": "[{".repeat(300)}).to_string().into_bytes(),
        nested(129).into_bytes(),
    ];
    let records: Vec<KafkaRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| KafkaRecord::from_value("in", i as i64, v.clone()))
        .collect();
    let results = transform("misbehave-py")
        .transformer(Limits::default(), Arc::default())
        .unwrap()
        .process(&records);
    let too_deep = "value is not valid JSON: nested more than 128 levels deep";
    for (i, value) in values.iter().enumerate() {
        match i {
            1 | 3 => assert_eq!(failed(&results[i]), too_deep, "{i}"),
            // Echoed byte for byte (compact JSON is written back as it
            // came; serde_json itself stops short of 128 levels).
            _ => assert_eq!(
                single(&results[i]).value.as_deref(),
                Some(value.as_slice()),
                "{i}"
            ),
        }
    }
}

#[test]
fn a_batch_function_returning_the_wrong_count_fails_every_record_naming_it() {
    host_log();
    let results = run(
        "misbehave-py",
        &[],
        &[json!({"n": 1}), json!({"do": "miscount"}), json!({"n": 3})],
    );
    let reason = "process_batch() returned 2 results for 3 records; \
                  expected a list with one per record";
    assert_eq!(
        results,
        vec![Ok(Outcome::Fail(reason.into())); 3],
        "no record is produced from a list that does not line up"
    );
}
