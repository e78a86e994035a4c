//! End to end through the real broker (tansu, started by
//! `scripts/services.sh up`): topics in, guests, topics and Parquet out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Int64Array, StringArray};
use serde_json::Value;
use sluice_host::generate::{ExpediaGenerator, StayMix};
use sluice_host::kafka::{
    BoundedReader, KafkaConfig, KafkaError, ProduceRecord, Producer, ensure_topic,
};
use sluice_host::pipeline::{Routing, TopicRun, aggregate_topic, header, transform_topic};
use sluice_host::record::{Header, KafkaRecord};
use sluice_host::runtime::Limits;
use sluice_host::table::write_json_records;
use sluice_tests::{broker, fresh_topic, header_text, independent, read_all, transform};

fn produce(config: &KafkaConfig, topic: &str, values: &[Option<Vec<u8>>]) {
    ensure_topic(config, topic, 3).unwrap();
    let records: Vec<ProduceRecord> = values
        .iter()
        .enumerate()
        .map(|(i, value)| ProduceRecord {
            timestamp: None,
            topic: topic.to_owned(),
            partition: None,
            key: Some(i.to_string().into_bytes()),
            value: value.clone(),
            headers: vec![Header {
                key: "origin".into(),
                value: Some(b"test".to_vec()),
            }],
        })
        .collect();
    Producer::new(config).unwrap().send_all(&records).unwrap();
}

fn routing(output: &str) -> Routing {
    Routing {
        outputs: vec![output.to_owned()],
        dead_letter: format!("{output}.dlq"),
    }
}

#[test]
fn expedia_to_expedia_ext_accounts_for_every_record() {
    let config = broker();
    let input = fresh_topic("expedia");
    let output = fresh_topic("expedia_ext");
    let bookings: Vec<Value> = ExpediaGenerator::new(3, StayMix::default())
        .take(2000)
        .collect();
    let mut values: Vec<Option<Vec<u8>>> = bookings
        .iter()
        .map(|b| Some(b.to_string().into_bytes()))
        .collect();
    // Poison: not JSON, not an object, a tombstone.
    values.insert(10, Some(b"<booking id=1/>".to_vec()));
    values.insert(500, Some(b"[1,2,3]".to_vec()));
    values.insert(1500, None);
    produce(&config, &input, &values);

    let stay_category = transform("stay-category");
    let routing = routing(&output);
    for topic in [&output, &routing.dead_letter] {
        ensure_topic(&config, topic, 3).unwrap();
    }
    let mut transformer = stay_category
        .transformer(Limits::default(), Arc::default())
        .unwrap();
    let run = TopicRun {
        input: input.clone(),
        routing: routing.clone(),
        batch_size: 256,
    };
    let stats = transform_topic(&config, &mut transformer, &run, |_| {}).unwrap();
    assert_eq!(
        (stats.read, stats.produced, stats.dead_lettered),
        (2003, 2000, 3)
    );

    let out = read_all(&config, &output);
    assert_eq!(out.len(), 2000);
    let by_id: HashMap<u64, &KafkaRecord> = out
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            (v["id"].as_u64().unwrap(), r)
        })
        .collect();
    assert_eq!(by_id.len(), 2000, "every id exactly once");
    let stamp = format!("stay-category@{}", stay_category.short_version());
    for booking in &bookings {
        let record = by_id[&booking["id"].as_u64().unwrap()];
        let value: Value = serde_json::from_slice(record.value.as_deref().unwrap()).unwrap();
        assert_eq!(value["stay_category"], independent::category(booking));
        assert_eq!(header_text(record, header::TRANSFORM), stamp);
        assert_eq!(
            header_text(record, "origin"),
            "test",
            "input headers are kept"
        );
    }

    let dead = read_all(&config, &routing.dead_letter);
    assert_eq!(dead.len(), 3);
    for record in &dead {
        assert_eq!(header_text(record, header::ERROR_KIND), "rejected");
        assert_eq!(header_text(record, header::SOURCE_TOPIC), input);
        assert_eq!(header_text(record, header::TRANSFORM), stamp);
        let partition: i32 = header_text(record, header::SOURCE_PARTITION)
            .parse()
            .unwrap();
        let offset: i64 = header_text(record, header::SOURCE_OFFSET).parse().unwrap();
        assert!(partition >= 0 && offset >= 0);
    }
    let reasons: Vec<&str> = dead
        .iter()
        .map(|r| header_text(r, header::ERROR_REASON))
        .collect();
    for expected in ["JSON but not an object", "not valid JSON", "no value"] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected}: {reasons:?}"
        );
    }
    let tombstone = dead
        .iter()
        .find(|r| r.value.is_none())
        .expect("the tombstone is dead-lettered as it was");
    assert_eq!(tombstone.key.as_deref(), Some(&b"1500"[..]));
}

#[test]
fn a_trapping_or_looping_guest_dead_letters_its_record_and_the_stream_goes_on() {
    let config = broker();
    let input = fresh_topic("requests");
    let output = fresh_topic("answers");
    let mut values: Vec<Option<Vec<u8>>> = (0..50)
        .map(|i| Some(format!(r#"{{"n":{i}}}"#).into_bytes()))
        .collect();
    values[7] = Some(br#"{"do":"trap"}"#.to_vec());
    values[30] = Some(br#"{"do":"loop"}"#.to_vec());
    produce(&config, &input, &values);

    let routing = routing(&output);
    for topic in [&output, &routing.dead_letter] {
        ensure_topic(&config, topic, 3).unwrap();
    }
    let limits = Limits {
        deadline: Duration::from_millis(300),
        ..Limits::default()
    };
    let mut transformer = transform("misbehave")
        .transformer(limits, Arc::default())
        .unwrap();
    let run = TopicRun {
        input: input.clone(),
        routing: routing.clone(),
        batch_size: 20,
    };
    let stats = transform_topic(&config, &mut transformer, &run, |_| {}).unwrap();
    assert_eq!(
        (stats.read, stats.produced, stats.dead_lettered),
        (50, 48, 2)
    );

    assert_eq!(read_all(&config, &output).len(), 48);
    let dead = read_all(&config, &routing.dead_letter);
    let mut kinds: Vec<&str> = dead
        .iter()
        .map(|r| header_text(r, header::ERROR_KIND))
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["deadline", "trap"]);
    for record in &dead {
        let reason = header_text(record, header::ERROR_REASON);
        assert!(reason.contains("transform `misbehave`"), "{reason}");
        assert!(
            reason.contains(&format!(
                "offset {}",
                header_text(record, header::SOURCE_OFFSET)
            )),
            "{reason}"
        );
    }
}

#[test]
fn the_stay_summary_of_a_topic_lands_in_parquet() {
    let config = broker();
    let topic = fresh_topic("expedia_ext");
    let bookings: Vec<Value> = ExpediaGenerator::new(9, StayMix::default())
        .take(1500)
        .collect();
    produce(
        &config,
        &topic,
        &bookings
            .iter()
            .map(|b| Some(b.to_string().into_bytes()))
            .collect::<Vec<_>>(),
    );

    let window = transform("stay-summary")
        .aggregator(Limits::default(), Arc::default())
        .unwrap();
    let aggregated = aggregate_topic(&config, window, &topic, 400).unwrap();
    assert_eq!(aggregated.read, 1500);
    assert!(aggregated.refused.is_empty());
    let rows: Vec<Value> = aggregated
        .records
        .iter()
        .map(|r| serde_json::from_slice(r.value.as_deref().unwrap()).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.parquet");
    assert_eq!(write_json_records(&path, &rows).unwrap(), rows.len());

    let mut expected: HashMap<&str, (i64, std::collections::HashSet<String>)> = HashMap::new();
    for booking in &bookings {
        let entry = expected.entry(independent::category(booking)).or_default();
        entry.0 += 1;
        entry.1.insert(booking["hotel_id"].to_string());
    }
    let batch = sluice_tests::read_parquet(&path);
    let column = |name: &str| batch.column_by_name(name).unwrap().clone();
    let categories = column("stay_category");
    let categories = categories.as_any().downcast_ref::<StringArray>().unwrap();
    let all = column("count_all");
    let all = all.as_any().downcast_ref::<Int64Array>().unwrap();
    let distinct = column("count_distinct");
    let distinct = distinct.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(categories.len(), expected.len());
    for i in 0..categories.len() {
        let (count, hotels) = &expected[categories.value(i)];
        assert_eq!(all.value(i), *count, "{}", categories.value(i));
        assert_eq!(
            distinct.value(i),
            hotels.len() as i64,
            "{}",
            categories.value(i)
        );
    }
}

#[test]
fn the_reader_ends_at_the_high_watermark_even_with_empty_partitions() {
    let config = broker();
    let empty = fresh_topic("empty");
    ensure_topic(&config, &empty, 3).unwrap();
    let mut reader = BoundedReader::from_earliest(&config, &empty).unwrap();
    assert_eq!(reader.next_batch(10).unwrap(), None);

    let sparse = fresh_topic("sparse");
    produce(&config, &sparse, &[Some(b"{}".to_vec())]);
    let records = read_all(&config, &sparse);
    assert_eq!(records.len(), 1);
    let reader = BoundedReader::from_earliest(&config, &sparse).unwrap();
    assert_eq!(reader.ranges().len(), 3);
    assert_eq!(
        reader.ranges().iter().map(|r| r.end - r.start).sum::<i64>(),
        1
    );
}

#[test]
fn an_unknown_topic_is_named() {
    let config = broker();
    let missing = fresh_topic("missing");
    match BoundedReader::from_earliest(&config, &missing) {
        Err(KafkaError::UnknownTopic { topic, .. }) => assert_eq!(topic, missing),
        Err(other) => panic!("expected UnknownTopic, got {other}"),
        Ok(_) => panic!("expected UnknownTopic for {missing}"),
    }
}

/// tansu 0.6.0's sqlite schema has no index on `header(topition, offset_id)`
/// and its fetch looks up every record's headers, so reads slowed to 12 s
/// per fetch once the broker held 50,000 headers (the demo stalled).
/// `scripts/services.sh up` adds the index; this checks it is there.
#[test]
fn the_brokers_header_table_is_indexed() {
    let state = std::env::var("SLUICE_STATE").unwrap_or_else(|_| {
        let cache = std::env::var("SLUICE_CACHE").unwrap_or_else(|_| {
            format!(
                "{}/.cache/sluice",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        format!("{cache}/run")
    });
    let db = format!("{state}/tansu.db");
    assert!(
        std::path::Path::new(&db).is_file(),
        "tansu's database at {db}"
    );
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); \
             print([r[0] for r in db.execute(\"select name from sqlite_master where type='index' and tbl_name='header'\")])",
            &db,
        ])
        .output()
        .expect("python3 runs");
    let indexes = String::from_utf8_lossy(&output.stdout);
    assert!(
        indexes.contains("sluice_header_record"),
        "indexes on header: {indexes} {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Batches sent from two threads at once by one producer are each told
/// of their own records: a record too large for the client is refused
/// with its index in its batch, the others are delivered, and a batch
/// sent later but acknowledged first does not settle the other.
#[test]
fn concurrent_batches_each_get_their_own_acknowledgements() {
    let config = broker();
    let topic = fresh_topic("producer-batches");
    ensure_topic(&config, &topic, 3).unwrap();
    let producer = Producer::new(&config).unwrap();
    let batch = |tag: &str, too_large_at: usize| -> Vec<ProduceRecord> {
        (0..200)
            .map(|i| ProduceRecord {
                timestamp: None,
                topic: topic.clone(),
                partition: None,
                key: Some(format!("{tag}-{i}").into_bytes()),
                value: Some(if i == too_large_at {
                    vec![b'x'; producer.max_message_bytes() + 1]
                } else {
                    format!("{{\"i\":{i}}}").into_bytes()
                }),
                headers: Vec::new(),
            })
            .collect()
    };
    let (first, second) = (batch("a", 17), batch("b", 150));
    let (refused_first, refused_second) = std::thread::scope(|scope| {
        let a = scope.spawn(|| producer.send(&first).unwrap().refused());
        let b = scope.spawn(|| producer.send(&second).unwrap().refused());
        (a.join().unwrap(), b.join().unwrap())
    });
    let indexes = |refused: &[sluice_host::kafka::Refused]| -> Vec<usize> {
        refused.iter().map(|r| r.index).collect()
    };
    assert_eq!(indexes(&refused_first), [17]);
    assert_eq!(indexes(&refused_second), [150]);
    assert!(refused_first.iter().all(|r| r.is_permanent()));
    let stored: usize = BoundedReader::from_earliest(&config, &topic)
        .unwrap()
        .ranges()
        .iter()
        .map(|r| (r.end - r.start) as usize)
        .sum();
    assert_eq!(stored, 398, "every record but the two too large is stored");
}

/// A failed `send_all` names the topic of the record refused, whatever its
/// place in the batch (it once looked the topic up by the record's index).
#[test]
fn a_refused_record_is_reported_with_its_topic() {
    let config = broker();
    let topic = fresh_topic("producer-refused");
    ensure_topic(&config, &topic, 3).unwrap();
    let producer = Producer::new(&config).unwrap();
    let records: Vec<ProduceRecord> = (0..5)
        .map(|i| ProduceRecord {
            timestamp: None,
            topic: topic.clone(),
            partition: None,
            key: None,
            value: Some(vec![
                b'x';
                if i == 3 {
                    producer.max_message_bytes() + 1
                } else {
                    10
                }
            ]),
            headers: Vec::new(),
        })
        .collect();
    match producer.send_all(&records) {
        Err(KafkaError::Produce { topic: named, .. }) => assert_eq!(named, topic),
        other => panic!("expected a produce error naming {topic}, got {other:?}"),
    }
}
