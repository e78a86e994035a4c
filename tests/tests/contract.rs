//! Both versions of the guest contract, with real components: the SDK's
//! guests are built against `sluice:transform@0.2.0` (a batch as flat
//! buffers), `misbehave-v01` and `misbehave-agg-v01` against 0.1.0 (a
//! list of records) from the same source as their 0.2.0 twins. Records
//! must come out of either the same; a 0.2.0 answer that breaks the
//! contract must be refused naming what is wrong, never panic the host.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use sluice_host::record::{Header, KafkaRecord, Outcome, OutputRecord};
use sluice_host::runtime::{Contract, GuestFailure, Limits, Transformer};
use sluice_tests::transform;

fn header(key: &str, value: Option<&[u8]>) -> Header {
    Header {
        key: key.to_owned(),
        value: value.map(<[u8]>::to_vec),
    }
}

/// A batch that exercises every field of the layout: two topics, three
/// partitions (one topic's partition coming back after another's),
/// absent and empty keys and values, absent timestamps, headers without
/// values, repeated and empty header names, bytes that are not UTF-8.
fn awkward_batch() -> Vec<KafkaRecord> {
    let record =
        |topic: &str, partition, offset, key: Option<&[u8]>, value: Option<&[u8]>| KafkaRecord {
            topic: topic.to_owned(),
            partition,
            offset,
            timestamp: Some(1_700_000_000_000 + offset),
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        };
    let mut batch = vec![
        record("bookings", 0, 10, Some(b"k1"), Some(br#"{"id":1}"#)),
        record("bookings", 0, 11, None, Some(b"")),
        record("bookings", 2, 7, Some(b""), None),
        record("clicks", 0, 3, None, None),
        record(
            "bookings",
            0,
            12,
            Some(&[0xff, 0, 0xfe]),
            Some(&[0x80, 0x81]),
        ),
        record("bookings", 0, 13, Some(b"k"), Some(br#"{"do":"drop"}"#)),
        record(
            "clicks",
            1,
            4,
            None,
            Some(br#"{"do":"fail","reason":"bad click"}"#),
        ),
        record("clicks", 1, 5, Some(b"k"), Some(b"{}")),
    ];
    batch[1].timestamp = None;
    batch[3].timestamp = None;
    batch[0].headers = vec![
        header("trace", Some(b"abc")),
        header("empty", Some(b"")),
        header("none", None),
    ];
    batch[3].headers = vec![header("", None), header("dup", Some(b"1"))];
    batch[4].headers = vec![header("dup", Some(b"1")), header("dup", Some(&[0xff]))];
    batch[7].headers = vec![header("ü-name", None)];
    batch
}

/// What misbehave's echo gives for `record`: its value (empty when it has
/// none) with its key and headers, to every output.
fn echo(record: &KafkaRecord) -> Outcome {
    Outcome::Emit(vec![OutputRecord {
        topic: None,
        key: record.key.clone(),
        value: Some(record.value.clone().unwrap_or_default()),
        headers: record.headers.clone(),
    }])
}

fn transformer(guest: &str) -> Transformer {
    transform(guest)
        .transformer(Limits::default(), Arc::default())
        .unwrap()
}

fn outcomes(guest: &str, batch: &[KafkaRecord]) -> Vec<Outcome> {
    transformer(guest)
        .process(batch)
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{guest}: {e}")))
        .collect()
}

#[test]
fn each_component_says_which_contract_it_was_built_against() {
    for (guest, contract) in [
        ("misbehave", Contract::V0_2),
        ("misbehave-agg", Contract::V0_2),
        ("stay-category", Contract::V0_2),
        ("misbehave-v01", Contract::V0_1),
        ("misbehave-agg-v01", Contract::V0_1),
    ] {
        assert_eq!(transform(guest).contract(), contract, "{guest}");
    }
    assert_eq!(Contract::V0_2.to_string(), "0.2.0");
}

#[test]
fn a_0_1_and_a_0_2_component_give_the_same_outcomes_on_the_same_batch() {
    let batch = awkward_batch();
    let expected: Vec<Outcome> = batch
        .iter()
        .map(|r| match r.offset {
            13 => Outcome::Drop,
            4 => Outcome::Fail("bad click".into()),
            _ => echo(r),
        })
        .collect();
    assert_eq!(outcomes("misbehave", &batch), expected, "0.2.0");
    assert_eq!(outcomes("misbehave-v01", &batch), expected, "0.1.0");
    // Each record alone (the batch split after a trap) reads the same.
    let mut one = transformer("misbehave");
    for (record, expected) in batch.iter().zip(&expected) {
        let got = one.process(std::slice::from_ref(record));
        assert_eq!(got, vec![Ok(expected.clone())]);
    }
}

#[test]
fn a_trap_in_a_0_1_component_fails_only_its_record() {
    let mut batch = awkward_batch();
    batch[2].value = Some(br#"{"do":"trap"}"#.to_vec());
    for guest in ["misbehave-v01", "misbehave"] {
        let results = transformer(guest).process(&batch);
        assert_eq!(results.len(), batch.len(), "{guest}");
        for (i, result) in results.iter().enumerate() {
            match (i, result) {
                (2, Err(e)) => {
                    assert!(matches!(e.failure, GuestFailure::Trap(_)), "{guest}: {e}");
                    assert_eq!(e.record.as_ref().map(|r| r.offset), Some(7), "{guest}");
                }
                (2, other) => panic!("{guest}: the trap was not pinned: {other:?}"),
                (_, result) => assert!(result.is_ok(), "{guest} record {i}: {result:?}"),
            }
        }
    }
}

/// The counts of a window of `guest` given `batches`; the errors of the
/// records it refused, as offsets.
fn window(guest: &str, batches: &[Vec<KafkaRecord>]) -> (Value, Vec<i64>) {
    let mut window = transform(guest)
        .aggregator(Limits::default(), Arc::default())
        .unwrap();
    let mut refused = Vec::new();
    for batch in batches {
        for error in window.add(batch).unwrap() {
            refused.push(error.record.map(|r| r.offset).unwrap_or(-1));
        }
    }
    let out = window.finish().unwrap();
    assert_eq!(out.len(), 1, "{guest}: {out:?}");
    let value = serde_json::from_slice(out[0].value.as_deref().unwrap()).unwrap();
    (value, refused)
}

#[test]
fn a_0_1_aggregator_keeps_working_and_a_trap_costs_only_its_record() {
    let mut first = awkward_batch();
    first[4].value = Some(br#"{"do":"trap"}"#.to_vec());
    let second = vec![KafkaRecord::from_value("bookings", 40, b"{}".to_vec())];
    let batches = [first.clone(), second];
    let offsets: Vec<i64> = first
        .iter()
        .map(|r| r.offset)
        .filter(|&o| o != 12)
        .chain([40])
        .collect();
    let expected = json!({"count": offsets.len(), "offsets": offsets});
    for guest in ["misbehave-agg-v01", "misbehave-agg"] {
        let (counted, refused) = window(guest, &batches);
        assert_eq!(counted, expected, "{guest}");
        assert_eq!(refused, vec![12], "{guest}");
    }
}

/// A keyed record with a header, then one asking misbehave to break the
/// batch's answer in the way `field` says.
fn breaking(field: &str) -> Vec<KafkaRecord> {
    let mut keyed = KafkaRecord::from_value("bookings", 1, b"{}".to_vec());
    keyed.key = Some(b"k1".to_vec());
    keyed.headers = vec![header("trace", Some(b"abc"))];
    let request = json!({"do": "break", "field": field}).to_string();
    vec![
        keyed,
        KafkaRecord::from_value("bookings", 2, request.into_bytes()),
    ]
}

#[test]
fn a_broken_0_2_answer_is_a_contract_failure_naming_the_field() {
    let cases = [
        ("verdict", "results.verdicts[0] is 7"),
        (
            "verdicts",
            "results.verdicts has 1 entries for a batch of 2",
        ),
        ("emitted", "results.emitted has 3 entries for a batch of 2"),
        ("emitted-sum", "results.emitted adds up to 3 records"),
        (
            "reasons",
            "results.reasons has 1 entries for 0 fail verdicts",
        ),
        ("span-past-end", "past the end of results.outputs.data"),
        (
            "span-decreasing",
            "results.outputs.ends[1] is 1, before the end",
        ),
        ("destination", "results.outputs.destinations[0] is 1"),
        ("presence", "results.outputs.presence[0] is 128"),
        (
            "header-values",
            "results.outputs.header-values[0] is Some(5)",
        ),
        ("header-name", "is not UTF-8"),
    ];
    let mut misbehave = transformer("misbehave");
    for (field, names) in cases {
        let results = misbehave.process(&breaking(field));
        assert_eq!(results.len(), 2, "{field}");
        for result in results {
            match result {
                Err(e) => match &e.failure {
                    GuestFailure::Contract(message) => {
                        assert!(message.contains(names), "{field}: {message}")
                    }
                    other => panic!("{field}: not a contract failure: {other}"),
                },
                Ok(outcome) => panic!("{field}: a broken answer was taken: {outcome:?}"),
            }
        }
        // The same transformer goes on answering well-formed batches.
        let good = misbehave.process(&awkward_batch()[..1]);
        assert_eq!(good, vec![Ok(echo(&awkward_batch()[0]))], "after {field}");
    }
}

fn any_record() -> impl Strategy<Value = KafkaRecord> {
    let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12));
    let headers = proptest::collection::vec(("[a-zé]{0,4}", bytes()), 0..3);
    (
        prop_oneof![Just("a"), Just("b")],
        0..3i32,
        any::<i64>(),
        proptest::option::of(any::<i64>()),
        bytes(),
        bytes(),
        headers,
    )
        .prop_map(
            |(topic, partition, offset, timestamp, key, value, headers)| KafkaRecord {
                topic: topic.to_owned(),
                partition,
                offset,
                timestamp,
                key,
                value,
                headers: headers
                    .into_iter()
                    .map(|(key, value)| Header { key, value })
                    .collect(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any batch reaches a 0.2.0 guest through the SDK's record views and
    /// comes back through its results writer exactly as a 0.1.0 guest sees
    /// it: the host's encoder, the SDK's reader and writer and the host's
    /// decoder agree.
    #[test]
    fn any_batch_round_trips_through_the_sdk_as_through_0_1(
        batch in proptest::collection::vec(any_record(), 0..12)
    ) {
        let expected: Vec<Outcome> = batch.iter().map(echo).collect();
        prop_assert_eq!(outcomes("misbehave", &batch), expected.clone());
        prop_assert_eq!(outcomes("misbehave-v01", &batch), expected);
    }
}
