//! The language-detect guest (the ETL workers' language worker) and its
//! Python port in the real runtime: detected languages, what they keep,
//! and what they refuse. Every test runs once per implementation (the
//! modules at the end).

use std::sync::Arc;

use serde_json::{Value, json};
use sluice_host::record::{Header, KafkaRecord, Outcome};
use sluice_host::runtime::Limits;
use sluice_tests::transform;

/// One implementation of the transform: the component, and how it words a
/// value that is not JSON (the rest of the reasons are the same).
#[derive(Clone, Copy)]
struct Guest {
    name: &'static str,
    not_json: &'static str,
}

const RUST: Guest = Guest {
    name: "language-detect",
    not_json: "value is not JSON",
};
const PYTHON: Guest = Guest {
    name: "language-detect-py",
    not_json: "value is not valid JSON",
};

/// Each value through a fresh instance of `guest` in one batch: the
/// emitted value as JSON, or the failure reason.
fn detect(guest: Guest, values: &[Vec<u8>]) -> Vec<Result<Value, String>> {
    let records: Vec<KafkaRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| KafkaRecord::from_value("messages", i as i64, v.clone()))
        .collect();
    let mut transformer = transform(guest.name)
        .transformer(Limits::default(), Arc::default())
        .unwrap();
    let outcomes = transformer.process(&records);
    assert_eq!(outcomes.len(), records.len(), "one outcome per record");
    outcomes
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

fn message(id: u64, text: Value) -> Vec<u8> {
    json!({"id": id, "source": "feed", "content": {"title": "t", "text": text}})
        .to_string()
        .into_bytes()
}

fn confidence(output: &Value) -> f64 {
    output["content"]["language_confidence"]
        .as_f64()
        .unwrap_or_else(|| panic!("confidence is not a number in {output}"))
}

const SENTENCES: [(&str, &str); 7] = [
    (
        "en",
        "The committee met on Tuesday morning to discuss the budget for next year, \
         and most of the members agreed that the library should stay open longer.",
    ),
    (
        "fr",
        "Le conseil municipal s'est réuni mardi matin pour discuter du budget de l'année \
         prochaine, et la plupart des membres ont convenu que la bibliothèque devait rester \
         ouverte plus longtemps.",
    ),
    (
        "de",
        "Der Gemeinderat hat sich am Dienstagmorgen getroffen, um über den Haushalt für das \
         nächste Jahr zu sprechen, und die meisten Mitglieder waren sich einig, dass die \
         Bibliothek länger geöffnet bleiben sollte.",
    ),
    (
        "es",
        "El ayuntamiento se reunió el martes por la mañana para hablar del presupuesto del \
         próximo año, y la mayoría de los miembros estuvieron de acuerdo en que la biblioteca \
         debería permanecer abierta durante más tiempo.",
    ),
    (
        "ru",
        "Городской совет собрался во вторник утром, чтобы обсудить бюджет на следующий год, \
         и большинство его членов согласились, что библиотека должна работать дольше.",
    ),
    (
        "ja",
        "市議会は火曜日の朝に集まり、来年の予算について話し合いました。ほとんどの議員は、\
         図書館をもっと長い時間開けておくべきだということに賛成しました。",
    ),
    // Mandarin: whatlang's `cmn`, written as Chinese's `zh`.
    (
        "zh",
        "市议会星期二早上开会讨论明年的预算，大多数成员都同意图书馆应该延长开放时间。",
    ),
];

fn sentences_get_their_iso_639_1_code(guest: Guest) {
    let values: Vec<Vec<u8>> = SENTENCES
        .iter()
        .enumerate()
        .map(|(i, (_, text))| message(i as u64, (*text).into()))
        .collect();
    for ((expected, text), outcome) in SENTENCES.iter().zip(detect(guest, &values)) {
        let output = outcome.unwrap_or_else(|e| panic!("{text} failed: {e}"));
        assert_eq!(output["content"]["language"], *expected, "{text}");
        let confidence = confidence(&output);
        assert!(
            confidence > 0.5 && confidence <= 1.0,
            "{expected}: confidence {confidence}"
        );
    }
}

fn every_other_field_is_kept_in_order(guest: Guest) {
    let input = json!({
        "id": 42,
        "source": {"name": "rss", "tags": ["a", "b"]},
        "content": {
            "title": "Bonjour",
            "text": SENTENCES[1].1,
            "published": "2024-05-01T10:00:00Z",
            "score": 0.25,
        },
        "trailer": null,
    });
    let output = detect(guest, &[input.to_string().into_bytes()])
        .pop()
        .unwrap()
        .unwrap();
    let (input, output) = (input.as_object().unwrap(), output.as_object().unwrap());
    assert_eq!(
        output.keys().collect::<Vec<_>>(),
        input.keys().collect::<Vec<_>>()
    );
    for (key, value) in input {
        if key != "content" {
            assert_eq!(output[key], *value, "{key}");
        }
    }
    // The content's own fields unchanged and in order, the detection last.
    let mut content: Vec<_> = output["content"].as_object().unwrap().iter().collect();
    let (confidence_key, confidence) = content.pop().unwrap();
    let (language_key, language) = content.pop().unwrap();
    assert_eq!(
        (language_key.as_str(), confidence_key.as_str()),
        ("language", "language_confidence")
    );
    assert_eq!(language, "fr");
    assert!(confidence.as_f64().unwrap() > 0.5);
    assert_eq!(
        content,
        input["content"]
            .as_object()
            .unwrap()
            .iter()
            .collect::<Vec<_>>()
    );
}

fn an_earlier_detection_is_replaced_in_place(guest: Guest) {
    let input =
        json!({"content": {"language": "xx", "text": SENTENCES[0].1, "language_confidence": 0.1}});
    let output = detect(guest, &[input.to_string().into_bytes()])
        .pop()
        .unwrap()
        .unwrap();
    let content = output["content"].as_object().unwrap();
    assert_eq!(
        content.keys().collect::<Vec<_>>(),
        ["language", "text", "language_confidence"]
    );
    assert_eq!(content["language"], "en");
    assert!(content["language_confidence"].as_f64().unwrap() > 0.5);
}

fn undeterminable_text_gets_a_null_language(guest: Guest) {
    let values = vec![
        message(1, "".into()),
        message(2, "   ".into()),
        message(3, "12345 67 -- 89 ?!".into()),
    ];
    for (value, outcome) in values.iter().zip(detect(guest, &values)) {
        let input: Value = serde_json::from_slice(value).unwrap();
        let output = outcome.unwrap_or_else(|e| panic!("{input} failed: {e}"));
        assert_eq!(output["content"]["language"], Value::Null, "{input}");
        assert_eq!(confidence(&output), 0.0, "{input}");
        assert_eq!(output["content"]["text"], input["content"]["text"]);
        assert_eq!(output["id"], input["id"]);
    }
}

fn messages_without_text_pass_unchanged(guest: Guest) {
    let values = vec![
        br#"{"id": 1}"#.to_vec(),
        br#"{"id": 2, "content": {"title": "no text here"}}"#.to_vec(),
        br#"{"id":3,"content":{}}"#.to_vec(),
    ];
    for (value, outcome) in values.iter().zip(detect(guest, &values)) {
        let expected: Value = serde_json::from_slice(value).unwrap();
        assert_eq!(outcome.unwrap(), expected);
    }
}

fn bad_values_fail_with_a_reason_naming_the_problem(guest: Guest) {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), guest.not_json),
        (b"{\"content\": ".to_vec(), guest.not_json),
        (vec![0xff, 0xfe, b'{'], guest.not_json),
        (
            b"[1, 2]".to_vec(),
            "value is not a JSON object (found an array)",
        ),
        (
            b"\"hello\"".to_vec(),
            "value is not a JSON object (found a string)",
        ),
        (
            br#"{"content": "some text"}"#.to_vec(),
            "content is not an object (found a string)",
        ),
        (
            br#"{"content": null}"#.to_vec(),
            "content is not an object (found null)",
        ),
        (
            br#"{"content": {"text": 12}}"#.to_vec(),
            "content.text is not a string (found a number)",
        ),
        (
            br#"{"content": {"text": null}}"#.to_vec(),
            "content.text is not a string (found null)",
        ),
        (
            br#"{"content": {"text": ["a"]}}"#.to_vec(),
            "content.text is not a string (found an array)",
        ),
    ];
    let values: Vec<Vec<u8>> = cases.iter().map(|(v, _)| v.clone()).collect();
    for ((value, expected), outcome) in cases.iter().zip(detect(guest, &values)) {
        let reason = outcome.expect_err(&String::from_utf8_lossy(value));
        assert!(
            reason.contains(expected),
            "{}: {reason}",
            String::from_utf8_lossy(value)
        );
    }
}

fn a_tombstone_fails_with_a_reason(guest: Guest) {
    let mut transformer = transform(guest.name)
        .transformer(Limits::default(), Arc::default())
        .unwrap();
    let mut record = KafkaRecord::from_value("messages", 0, Vec::new());
    record.value = None;
    match &transformer.process(&[record])[0] {
        Ok(Outcome::Fail(reason)) => assert!(reason.contains("no value"), "{reason}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn a_bad_record_fails_alone_in_its_batch(guest: Guest) {
    let values = vec![
        message(1, SENTENCES[0].1.into()),
        b"not json".to_vec(),
        message(3, SENTENCES[2].1.into()),
        message(4, 7.into()),
        message(5, SENTENCES[3].1.into()),
    ];
    let outcomes = detect(guest, &values);
    assert_eq!(outcomes[0].as_ref().unwrap()["content"]["language"], "en");
    assert!(outcomes[1].as_ref().unwrap_err().contains(guest.not_json));
    assert_eq!(outcomes[2].as_ref().unwrap()["content"]["language"], "de");
    assert!(outcomes[3].as_ref().unwrap_err().contains("content.text"));
    assert_eq!(outcomes[4].as_ref().unwrap()["content"]["language"], "es");
    let ids: Vec<&Value> = [0, 2, 4]
        .iter()
        .map(|&i| &outcomes[i].as_ref().unwrap()["id"])
        .collect();
    assert_eq!(ids, [1, 3, 5]);
}

fn emitted_records_keep_key_and_headers(guest: Guest) {
    let mut record = KafkaRecord::from_value("messages", 9, message(9, SENTENCES[4].1.into()));
    record.key = Some(b"user-9".to_vec());
    record.headers = vec![
        Header {
            key: "trace".into(),
            value: Some(b"abc".to_vec()),
        },
        Header {
            key: "empty".into(),
            value: None,
        },
    ];
    let headers = |headers: &[Header]| {
        headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect::<Vec<_>>()
    };
    let mut transformer = transform(guest.name)
        .transformer(Limits::default(), Arc::default())
        .unwrap();
    match &transformer.process(std::slice::from_ref(&record))[0] {
        Ok(Outcome::Emit(out)) => {
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].key, record.key);
            assert_eq!(headers(&out[0].headers), headers(&record.headers));
            assert_eq!(out[0].topic, None);
            let value: Value = serde_json::from_slice(out[0].value.as_deref().unwrap()).unwrap();
            assert_eq!(value["content"]["language"], "ru");
        }
        other => panic!("expected an emit, got {other:?}"),
    }
}

macro_rules! per_implementation {
    ($($module:ident: $guest:expr;)*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn sentences_get_their_iso_639_1_code() {
                super::sentences_get_their_iso_639_1_code($guest)
            }
            #[test]
            fn every_other_field_is_kept_in_order() {
                super::every_other_field_is_kept_in_order($guest)
            }
            #[test]
            fn an_earlier_detection_is_replaced_in_place() {
                super::an_earlier_detection_is_replaced_in_place($guest)
            }
            #[test]
            fn undeterminable_text_gets_a_null_language() {
                super::undeterminable_text_gets_a_null_language($guest)
            }
            #[test]
            fn messages_without_text_pass_unchanged() {
                super::messages_without_text_pass_unchanged($guest)
            }
            #[test]
            fn bad_values_fail_with_a_reason_naming_the_problem() {
                super::bad_values_fail_with_a_reason_naming_the_problem($guest)
            }
            #[test]
            fn a_tombstone_fails_with_a_reason() {
                super::a_tombstone_fails_with_a_reason($guest)
            }
            #[test]
            fn a_bad_record_fails_alone_in_its_batch() {
                super::a_bad_record_fails_alone_in_its_batch($guest)
            }
            #[test]
            fn emitted_records_keep_key_and_headers() {
                super::emitted_records_keep_key_and_headers($guest)
            }
        }
    )*};
}

per_implementation! {
    rust: RUST;
    python: PYTHON;
}
