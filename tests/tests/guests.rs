//! The real guest components, run in the real runtime (no broker needed).
//! Tests of behaviour a transform shares with its ports run once per
//! implementation (the `rust`, `python` and `javascript` modules at the end).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};
use sluice_host::generate::{ExpediaGenerator, StayMix};
use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::{Limits, RuntimeError, World};
use sluice_tests::{independent, runtime, transform};

fn records(values: &[Vec<u8>]) -> Vec<KafkaRecord> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| KafkaRecord::from_value("bookings", i as i64, v.clone()))
        .collect()
}

/// `values` through a fresh window of aggregator `name`, added in batches
/// of `batch`; the result rows as JSON.
fn aggregate(name: &str, values: &[Value], batch: usize) -> Vec<Value> {
    let mut window = transform(name)
        .aggregator(Limits::default(), Arc::default())
        .unwrap();
    let bytes: Vec<Vec<u8>> = values.iter().map(|v| v.to_string().into_bytes()).collect();
    for chunk in records(&bytes).chunks(batch) {
        window.add(chunk).unwrap();
    }
    window
        .finish()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(r.value.as_deref().unwrap()).unwrap())
        .collect()
}

fn categorise(guest: &str, values: &[Vec<u8>]) -> Vec<Result<Value, String>> {
    let mut transformer = transform(guest)
        .transformer(Limits::default(), Arc::default())
        .unwrap();
    transformer
        .process(&records(values))
        .into_iter()
        .map(|result| match result {
            Ok(Outcome::Emit(out)) => {
                assert_eq!(out.len(), 1);
                Ok(serde_json::from_slice(out[0].value.as_deref().unwrap()).unwrap())
            }
            Ok(Outcome::Fail(reason)) => Err(reason),
            other => panic!("unexpected outcome {other:?}"),
        })
        .collect()
}

fn stay(ci: Value, co: Value) -> Vec<u8> {
    json!({"id": 1, "hotel_id": 9, "srch_ci": ci, "srch_co": co})
        .to_string()
        .into_bytes()
}

fn stay_category_rules_at_every_boundary(guest: &str) {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            stay("2017-08-13".into(), "2017-08-13".into()),
            "Erroneous data",
        ),
        (stay("2017-08-13".into(), "2017-08-14".into()), "Short stay"),
        (stay("2017-08-13".into(), "2017-08-17".into()), "Short stay"),
        (
            stay("2017-08-13".into(), "2017-08-18".into()),
            "Standard stay",
        ),
        (
            stay("2017-08-13".into(), "2017-08-23".into()),
            "Standard stay",
        ),
        (
            stay("2017-08-13".into(), "2017-08-24".into()),
            "Standard extended stay",
        ),
        (
            stay("2017-08-13".into(), "2017-08-27".into()),
            "Standard extended stay",
        ),
        (stay("2017-08-13".into(), "2017-08-28".into()), "Long stay"),
        (
            stay("2017-08-20".into(), "2017-08-13".into()),
            "Erroneous data",
        ),
        (stay(Value::Null, "2017-08-13".into()), "Erroneous data"),
        (stay("2017-08-13".into(), Value::Null), "Erroneous data"),
        (
            stay("2017-02-27".into(), "2017-02-30".into()),
            "Erroneous data",
        ),
        (
            stay("13/08/2017".into(), "2017-08-20".into()),
            "Erroneous data",
        ),
        (stay(20170813.into(), "2017-08-20".into()), "Erroneous data"),
        (
            br#"{"id": 3, "srch_co": "2017-08-20"}"#.to_vec(),
            "Erroneous data",
        ),
        (br#"{"id": 4}"#.to_vec(), "Erroneous data"),
        (stay("2016-02-28".into(), "2016-03-14".into()), "Long stay"),
        (
            stay("2017-02-28".into(), "2017-03-14".into()),
            "Standard extended stay",
        ),
    ];
    let values: Vec<Vec<u8>> = cases.iter().map(|(v, _)| v.clone()).collect();
    let outcomes = categorise(guest, &values);
    for ((input, expected), outcome) in cases.iter().zip(outcomes) {
        let output =
            outcome.unwrap_or_else(|e| panic!("{} failed: {e}", String::from_utf8_lossy(input)));
        assert_eq!(
            output["stay_category"],
            *expected,
            "{}",
            String::from_utf8_lossy(input)
        );
        // Every input field is kept unchanged, in order, with the category last.
        let input: Value = serde_json::from_slice(input).unwrap();
        let mut fields: Vec<_> = output.as_object().unwrap().iter().collect();
        assert_eq!(fields.pop().unwrap().0, "stay_category");
        assert_eq!(
            fields,
            input.as_object().unwrap().iter().collect::<Vec<_>>()
        );
    }
}

fn values_that_are_not_objects_fail_alone(guest: &str) {
    let values = vec![
        b"not json".to_vec(),
        b"[1, 2]".to_vec(),
        b"\"2017-08-13\"".to_vec(),
        stay("2017-08-13".into(), "2017-08-15".into()),
        b"{\"srch_ci\": ".to_vec(),
    ];
    let outcomes = categorise(guest, &values);
    assert!(outcomes[0].as_ref().unwrap_err().contains("not valid JSON"));
    assert!(outcomes[1].as_ref().unwrap_err().contains("not an object"));
    assert!(outcomes[2].as_ref().unwrap_err().contains("not an object"));
    assert_eq!(outcomes[3].as_ref().unwrap()["stay_category"], "Short stay");
    assert!(outcomes[4].as_ref().unwrap_err().contains("not valid JSON"));
}

fn a_tombstone_fails_with_a_reason(guest: &str) {
    let mut transformer = transform(guest)
        .transformer(Limits::default(), Arc::default())
        .unwrap();
    let mut record = KafkaRecord::from_value("bookings", 0, Vec::new());
    record.value = None;
    match &transformer.process(&[record])[0] {
        Ok(Outcome::Fail(reason)) => assert!(reason.contains("no value"), "{reason}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn generated_bookings_match_an_independent_categorisation(guest: &str) {
    let bookings: Vec<Value> = ExpediaGenerator::new(11, StayMix::default())
        .take(3000)
        .collect();
    let values: Vec<Vec<u8>> = bookings
        .iter()
        .map(|b| b.to_string().into_bytes())
        .collect();
    let outcomes = categorise(guest, &values);
    let mut seen = HashSet::new();
    for (booking, outcome) in bookings.iter().zip(outcomes) {
        let output = outcome.unwrap();
        assert_eq!(
            output["stay_category"],
            independent::category(booking),
            "{booking}"
        );
        seen.insert(output["stay_category"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen.len(),
        5,
        "the generated mix covers every category: {seen:?}"
    );
}

fn stay_summary_counts_match_an_independent_computation(guest: &str) {
    let bookings: Vec<Value> = ExpediaGenerator::new(5, StayMix::default())
        .take(12_000)
        .collect();
    let mut expected: BTreeMap<&str, (u64, HashSet<String>)> = BTreeMap::new();
    for booking in &bookings {
        let (count, hotels) = expected.entry(independent::category(booking)).or_default();
        *count += 1;
        hotels.insert(booking["hotel_id"].to_string());
    }

    let rows = aggregate(guest, &bookings, 1000);
    assert_eq!(rows.len(), expected.len());
    for row in &rows {
        let category = row["stay_category"].as_str().unwrap();
        let (count, hotels) = &expected[category];
        assert_eq!(row["count_all"], *count, "{category}");
        assert_eq!(row["count_distinct"], hotels.len() as u64, "{category}");
    }
    let total: u64 = rows.iter().map(|r| r["count_all"].as_u64().unwrap()).sum();
    assert_eq!(total, 12_000);
}

/// An aggregator has no dead-letter topic: what it cannot count is skipped
/// (and logged), the rest counted; rows carry their category as key.
fn stay_summary_skips_what_it_cannot_count(guest: &str) {
    let values: Vec<Vec<u8>> = vec![
        br#"{"hotel_id": 1, "stay_category": "Short stay"}"#.to_vec(),
        b"[1]".to_vec(),
        b"not json".to_vec(),
        br#"{"hotel_id": 2, "srch_ci": "2017-08-01", "srch_co": "2017-08-31"}"#.to_vec(),
        br#""text""#.to_vec(),
        br#"{"hotel_id": 3, "stay_category": 7}"#.to_vec(),
    ];
    let mut window = transform(guest)
        .aggregator(Limits::default(), Arc::default())
        .unwrap();
    window.add(&records(&values)).unwrap();
    let rows: Vec<(Option<Vec<u8>>, String)> = window
        .finish()
        .unwrap()
        .into_iter()
        .map(|r| {
            let value: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            (r.key, value.to_string())
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                Some(b"Short stay".to_vec()),
                r#"{"stay_category":"Short stay","count_all":1,"count_distinct":1}"#.to_owned()
            ),
            (
                Some(b"Long stay".to_vec()),
                r#"{"stay_category":"Long stay","count_all":1,"count_distinct":1}"#.to_owned()
            ),
        ]
    );
}

fn worlds_are_checked_when_instantiating(summary: &str, category: &str) {
    let summary = transform(summary);
    assert_eq!(summary.world(), World::Aggregator);
    assert!(matches!(
        summary.transformer(Limits::default(), Arc::default()),
        Err(RuntimeError::UnexpectedWorld { .. })
    ));
    let category = transform(category);
    assert_eq!(category.world(), World::Transformer);
    assert!(matches!(
        category.aggregator(Limits::default(), Arc::default()),
        Err(RuntimeError::UnexpectedWorld { .. })
    ));
}

#[test]
fn bytes_that_are_not_a_component_are_refused_with_the_name() {
    let error = runtime()
        .load("noise", b"\0asm\x01\0\0\0garbage")
        .err()
        .unwrap();
    assert!(matches!(error, RuntimeError::Compile { .. }), "{error}");
    assert!(error.to_string().contains("`noise`"), "{error}");
}

fn metadata_reaches_the_guest(guest: &str) {
    let metadata = Arc::new(vec![("region".to_owned(), "westeurope".to_owned())]);
    let mut transformer = transform(guest)
        .transformer(Limits::default(), metadata)
        .unwrap();
    let out = transformer.process(&records(&[br#"{"do":"metadata"}"#.to_vec()]));
    match &out[0] {
        Ok(Outcome::Emit(records)) => {
            let value: Value =
                serde_json::from_slice(records[0].value.as_deref().unwrap()).unwrap();
            assert_eq!(value, json!({"region": "westeurope"}));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn clickstream_aggregate_matches_an_independent_computation() {
    use sluice_host::generate::ClickstreamGenerator;

    let events: Vec<Value> = ClickstreamGenerator::new(4, 1_750_000_000)
        .take(10_000)
        .collect();
    // Independently: group, then (latest - earliest) / unique users, floored.
    /// clicks, users, earliest and latest timestamp of one (url, country).
    type Group = (u64, HashSet<String>, i64, i64);
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for e in &events {
        let key = (
            e["url"].as_str().unwrap().to_owned(),
            e["country"].as_str().unwrap().to_owned(),
        );
        let ts = e["timestamp"].as_i64().unwrap();
        let g = groups
            .entry(key)
            .or_insert((0, HashSet::new(), i64::MAX, i64::MIN));
        g.0 += 1;
        g.1.insert(e["user_id"].as_str().unwrap().to_owned());
        g.2 = g.2.min(ts);
        g.3 = g.3.max(ts);
    }

    let rows = aggregate("clickstream-agg", &events, 2_500);
    assert_eq!(rows.len(), groups.len());
    for row in &rows {
        let key = (
            row["url"].as_str().unwrap().to_owned(),
            row["country"].as_str().unwrap().to_owned(),
        );
        let (clicks, users, earliest, latest) = &groups[&key];
        assert_eq!(row["clicks"], *clicks);
        assert_eq!(row["unique_users"], users.len() as u64);
        let seconds = (latest - earliest) / users.len() as i64;
        let expected = format!(
            "{:02}:{:02}:{:02}",
            seconds / 3600,
            (seconds % 3600) / 60,
            seconds % 60
        );
        assert_eq!(row["avg_time_spent"], expected, "{key:?}");
    }
    let total: u64 = rows.iter().map(|r| r["clicks"].as_u64().unwrap()).sum();
    assert_eq!(total, 10_000);
}

#[test]
fn routing_sends_records_to_declared_outputs_or_the_dead_letter_topic() {
    use sluice_host::pipeline::{Routed, Routing, header};
    use sluice_host::record::OutputRecord;

    let transform = transform("misbehave");
    let input = KafkaRecord::from_value("in", 7, b"{}".to_vec());
    let emit = |topic: Option<&str>| {
        Ok(Outcome::Emit(vec![OutputRecord {
            topic: topic.map(str::to_owned),
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: Vec::new(),
        }]))
    };
    let routing = |outputs: &[&str]| Routing {
        outputs: outputs.iter().map(|o| o.to_string()).collect(),
        dead_letter: "dlq".into(),
    };

    let mut out = Vec::new();
    assert_eq!(
        routing(&["a", "b"]).route(&transform, &input, emit(None), &mut out),
        Routed::Emitted(2)
    );
    assert_eq!(
        out.iter().map(|r| r.topic.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(out.iter().all(|r| {
        r.value.as_deref() == Some(&b"v"[..])
            && r.headers
                .iter()
                .filter(|h| h.key == header::TRANSFORM)
                .count()
                == 1
    }));

    let mut out = Vec::new();
    assert_eq!(
        routing(&["a", "b"]).route(&transform, &input, emit(Some("b")), &mut out),
        Routed::Emitted(1)
    );
    assert_eq!(out[0].topic, "b");

    for (outputs, topic) in [(&["a"][..], Some("elsewhere")), (&[][..], None)] {
        let mut out = Vec::new();
        let routed = routing(outputs).route(&transform, &input, emit(topic), &mut out);
        assert_eq!(routed, Routed::DeadLettered);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].topic, "dlq");
        let kind = out[0]
            .headers
            .iter()
            .find(|h| h.key == header::ERROR_KIND)
            .unwrap();
        assert_eq!(kind.value.as_deref(), Some(&b"contract"[..]));
    }
}

/// JSON values equal field for field, in the same order; numbers equal as
/// numbers (Python writes `1.50` as `1.5`, JavaScript `1234.0` as `1234`).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_json(va, vb))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_json(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// A port gives the Rust guest's output on the same input: every field, in
/// the same order, with the same values; and fails where it fails.
fn port_matches_the_rust_guest_field_for_field(port: &str) {
    let mut values: Vec<Vec<u8>> = ExpediaGenerator::new(23, StayMix::default())
        .take(5000)
        .map(|b| b.to_string().into_bytes())
        .collect();
    values.extend([
        br#"{"id": 7, "srch_ci": "2017-08-13", "srch_co":"2017-08-20", "hotel_id": 1.50}"#.to_vec(),
        br#"{"stay_category":"old","srch_ci":"2017-08-01","srch_co":"2017-08-31"}"#.to_vec(),
        br#"{"srch_ci": "2017\u002d08-13", "srch_co": "2017-08-14", "name": "H\u00f4tel \u263a"}"#.to_vec(),
        br#"{"srch_ci": "0000-03-01", "srch_co": "0000-03-09"}"#.to_vec(),
        br#"{"srch_ci": "2016-02-29", "srch_co": "2016-03-01", "nested": {"a": [1, 2.5, null, true]}}"#.to_vec(),
        // An Arabic-Indic digit: ten characters, but not ten ASCII bytes.
        "{\"srch_ci\": \"\u{662}017-08-13\", \"srch_co\": \"2017-08-20\"}"
            .as_bytes()
            .to_vec(),
        b" { } ".to_vec(),
        b"[1, 2]".to_vec(),
        b"not json".to_vec(),
    ]);
    let rust = categorise("stay-category", &values);
    let ported = categorise(port, &values);
    for ((value, rust), ported) in values.iter().zip(rust).zip(ported) {
        let input = String::from_utf8_lossy(value);
        match (rust, ported) {
            (Ok(rust), Ok(ported)) => {
                assert!(same_json(&ported, &rust), "{input}: {ported} != {rust}")
            }
            (Err(_), Err(_)) => {}
            (rust, ported) => panic!("{input}: {port} gave {ported:?}, the Rust guest {rust:?}"),
        }
    }
}

/// The stay-category tests, for one implementation.
macro_rules! stay_category_tests {
    ($guest:literal) => {
        #[test]
        fn stay_category_rules_at_every_boundary() {
            super::stay_category_rules_at_every_boundary($guest)
        }
        #[test]
        fn values_that_are_not_objects_fail_alone() {
            super::values_that_are_not_objects_fail_alone($guest)
        }
        #[test]
        fn a_tombstone_fails_with_a_reason() {
            super::a_tombstone_fails_with_a_reason($guest)
        }
        #[test]
        fn generated_bookings_match_an_independent_categorisation() {
            super::generated_bookings_match_an_independent_categorisation($guest)
        }
    };
}

/// The aggregator, world and metadata tests, for one implementation.
macro_rules! summary_world_and_metadata_tests {
    ($summary:literal, $category:literal, $misbehave:literal) => {
        #[test]
        fn stay_summary_counts_match_an_independent_computation() {
            super::stay_summary_counts_match_an_independent_computation($summary)
        }
        #[test]
        fn stay_summary_skips_what_it_cannot_count() {
            super::stay_summary_skips_what_it_cannot_count($summary)
        }
        #[test]
        fn worlds_are_checked_when_instantiating() {
            super::worlds_are_checked_when_instantiating($summary, $category)
        }
        #[test]
        fn metadata_reaches_the_guest() {
            super::metadata_reaches_the_guest($misbehave)
        }
    };
}

/// The Rust guests.
mod rust {
    stay_category_tests!("stay-category");
    summary_world_and_metadata_tests!("stay-summary", "stay-category", "misbehave");
}

/// Their Python ports (guests/python).
mod python {
    stay_category_tests!("stay-category-py");
    summary_world_and_metadata_tests!("stay-summary-py", "stay-category-py", "misbehave-py");

    #[test]
    fn matches_the_rust_guest_field_for_field() {
        super::port_matches_the_rust_guest_field_for_field("stay-category-py")
    }
}

/// The JavaScript port of stay-category (guests/js).
mod javascript {
    stay_category_tests!("stay-category-js");

    #[test]
    fn matches_the_rust_guest_field_for_field() {
        super::port_matches_the_rust_guest_field_for_field("stay-category-js")
    }
}
