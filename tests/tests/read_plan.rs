//! The topics.json offset controls against the real broker: the four scenarios
//! of its README, committed offsets, caps and bad offsets.

use std::collections::BTreeMap;

use sluice_host::kafka::{BoundedReader, KafkaConfig, KafkaError, ReadPlan, Start, ensure_topic};
use sluice_tests::{broker, fresh_topic, plan, produce_to};

/// A topic with `per_partition` records in each of 3 partitions; values
/// say where they were written: `p<partition>-<index>`.
fn topic_with_records(config: &KafkaConfig, per_partition: i64) -> String {
    let topic = fresh_topic("plan");
    ensure_topic(config, &topic, 3).unwrap();
    for p in 0..3 {
        let values: Vec<String> = (0..per_partition).map(|i| format!("p{p}-{i}")).collect();
        produce_to(config, &topic, p, &values);
    }
    topic
}

/// (partition, offset, value) of everything the plan reads, sorted.
fn read(config: &KafkaConfig, plan: &ReadPlan) -> Vec<(i32, i64, String)> {
    let mut reader = BoundedReader::open(config, plan).unwrap();
    let mut out = Vec::new();
    while let Some(batch) = reader.next_batch(7).unwrap() {
        out.extend(batch.into_iter().map(|r| {
            (
                r.partition,
                r.offset,
                String::from_utf8(r.value.unwrap()).unwrap(),
            )
        }));
    }
    out.sort();
    out
}

#[test]
fn scenario_1_specific_offsets_on_one_partition() {
    let config = broker();
    let topic = topic_with_records(&config, 10);
    let read_plan = plan(
        &topic,
        &fresh_topic("g"),
        serde_json::json!({"num_messages": 4, "starting_offsets": {"0": 5}, "offset_increment": {"0": 0}}),
    );
    let records = read(&config, &read_plan);
    let expected: Vec<_> = (5..9).map(|i| (0, i, format!("p0-{i}"))).collect();
    assert_eq!(records, expected);
}

#[test]
fn scenario_2_specific_offsets_on_several_partitions() {
    let config = broker();
    let topic = topic_with_records(&config, 10);
    let read_plan = plan(
        &topic,
        &fresh_topic("g"),
        serde_json::json!({"num_messages": 100, "starting_offsets": {"0": 8, "1": 6}}),
    );
    let records = read(&config, &read_plan);
    let expected = vec![
        (0, 8, "p0-8".to_owned()),
        (0, 9, "p0-9".to_owned()),
        (1, 6, "p1-6".to_owned()),
        (1, 7, "p1-7".to_owned()),
        (1, 8, "p1-8".to_owned()),
        (1, 9, "p1-9".to_owned()),
    ];
    assert_eq!(
        records, expected,
        "partition 2 is not read; the end is the high watermark"
    );
}

#[test]
fn scenario_3_reset_reads_every_partition_from_the_start() {
    let config = broker();
    let topic = topic_with_records(&config, 10);
    let read_plan = plan(
        &topic,
        &fresh_topic("g"),
        serde_json::json!({"num_messages": 3, "reset_offsets": true, "starting_offsets": null}),
    );
    let records = read(&config, &read_plan);
    let expected: Vec<_> = (0..3)
        .flat_map(|p| (0..3).map(move |i| (p, i, format!("p{p}-{i}"))))
        .collect();
    assert_eq!(records, expected);
}

#[test]
fn scenario_4_offset_increment_shifts_written_offsets_not_reads() {
    let config = broker();
    let topic = topic_with_records(&config, 5);
    let read_plan = plan(
        &topic,
        &fresh_topic("g"),
        serde_json::json!({"reset_offsets": true, "offset_increment": {"0": 200}}),
    );
    let records = read(&config, &read_plan);
    assert_eq!(
        records.len(),
        15,
        "Kafka reads the real offsets of every partition"
    );
    let adjusted: BTreeMap<(i32, i64), i64> = records
        .iter()
        .map(|(p, o, _)| ((*p, *o), read_plan.adjusted_offset(*p, *o)))
        .collect();
    assert_eq!(adjusted[&(0, 3)], 203);
    assert_eq!(adjusted[&(1, 3)], 3);
}

#[test]
fn the_group_resumes_from_its_committed_offsets() {
    let config = broker();
    let topic = topic_with_records(&config, 10);
    let group = fresh_topic("group");
    let read_plan = plan(&topic, &group, serde_json::json!({"num_messages": 4}));

    // Nothing committed yet: the group starts at the earliest offsets.
    let mut reader = BoundedReader::open(&config, &read_plan).unwrap();
    let mut first = Vec::new();
    while let Some(batch) = reader.next_batch(100).unwrap() {
        first.extend(batch);
    }
    assert_eq!(first.len(), 12);
    assert!(first.iter().all(|r| r.offset < 4));
    reader.commit(&[(0, 4), (1, 4), (2, 4)]).unwrap();
    drop(reader);

    let second = read(&config, &read_plan);
    let expected: Vec<_> = (0..3)
        .flat_map(|p| (4..8).map(move |i| (p, i, format!("p{p}-{i}"))))
        .collect();
    assert_eq!(
        second, expected,
        "reading resumes where the commit left off"
    );
}

#[test]
fn offsets_outside_the_partition_are_refused_with_the_range() {
    let config = broker();
    let topic = topic_with_records(&config, 5);
    let read_plan = plan(
        &topic,
        &fresh_topic("g"),
        serde_json::json!({"starting_offsets": {"1": 99}}),
    );
    match BoundedReader::open(&config, &read_plan) {
        Err(KafkaError::OffsetOutOfRange {
            partition,
            offset,
            low,
            high,
            ..
        }) => {
            assert_eq!((partition, offset, low, high), (1, 99, 0, 5));
        }
        Err(other) => panic!("expected OffsetOutOfRange, got {other}"),
        Ok(_) => panic!("expected OffsetOutOfRange"),
    }

    let read_plan = plan(
        &topic,
        &fresh_topic("g"),
        serde_json::json!({"starting_offsets": {"7": 0}}),
    );
    let error = BoundedReader::open(&config, &read_plan)
        .err()
        .expect("partition 7 does not exist");
    assert!(
        error.to_string().contains("no partition 7 (it has 3)"),
        "{error}"
    );
}

/// One pooled consumer serves read after read, across topics, partitions
/// and offsets, each read seeing exactly its own range; a failed plan
/// (unknown topic) keeps the consumer.
#[test]
fn a_pooled_consumer_reads_each_range_exactly_after_other_reads() {
    use sluice_host::kafka::{ReaderPool, Start};

    let config = broker();
    let (a, b) = (
        topic_with_records(&config, 10),
        topic_with_records(&config, 5),
    );
    let pool = ReaderPool::new(config.clone(), "pool-test");
    pool.warm().unwrap();
    assert_eq!(pool.idle(), 1);
    let read = |topic: &str, partition: i32, offset: i64, count: u64| {
        let plan = ReadPlan {
            topic: topic.to_owned(),
            group_id: "pool-test".into(),
            start: Start::Offsets(BTreeMap::from([(partition, offset)])),
            max_per_partition: Some(count),
            offset_increment: BTreeMap::new(),
        };
        pool.read(&plan, |reader| {
            let mut out = Vec::new();
            while let Some(batch) = reader.next_batch(3)? {
                out.extend(batch.into_iter().map(|r| {
                    (
                        r.topic,
                        r.partition,
                        r.offset,
                        String::from_utf8(r.value.unwrap()).unwrap(),
                    )
                }));
            }
            Ok(out)
        })
    };
    let expect = |topic: &str, partition: i32, offsets: std::ops::Range<i64>| {
        offsets
            .map(|o| (topic.to_owned(), partition, o, format!("p{partition}-{o}")))
            .collect::<Vec<_>>()
    };
    for (topic, partition, offset, count, expected) in [
        (&a, 0, 3, 4, expect(&a, 0, 3..7)),
        (&b, 0, 0, 100, expect(&b, 0, 0..5)),
        (&a, 1, 8, 100, expect(&a, 1, 8..10)),
        (&a, 0, 0, 3, expect(&a, 0, 0..3)),
        (&b, 2, 4, 1, expect(&b, 2, 4..5)),
        (&a, 0, 9, 5, expect(&a, 0, 9..10)),
        (&a, 0, 3, 4, expect(&a, 0, 3..7)),
    ] {
        assert_eq!(
            read(topic, partition, offset, count).unwrap(),
            expected,
            "{topic} partition {partition} from {offset}"
        );
        assert_eq!(pool.idle(), 1, "the one consumer went back to the pool");
    }
    let unknown = read("no-such-topic-for-the-pool", 0, 0, 1).unwrap_err();
    assert!(
        matches!(unknown, KafkaError::UnknownTopic { .. }),
        "{unknown}"
    );
    assert_eq!(pool.idle(), 1, "a bad plan keeps the consumer");
    assert_eq!(read(&b, 1, 0, 2).unwrap(), expect(&b, 1, 0..2));
}

/// The watermarks of every partition come from one request for the earliest
/// and one for the latest offsets of them all; each partition must still
/// get its own: here 5, 0 and 12 records.
#[test]
fn each_partition_gets_its_own_watermarks_from_the_batched_request() {
    let config = broker();
    let topic = fresh_topic("marks");
    ensure_topic(&config, &topic, 3).unwrap();
    for (partition, count) in [(0, 5), (2, 12)] {
        let values: Vec<String> = (0..count).map(|i| format!("p{partition}-{i}")).collect();
        produce_to(&config, &topic, partition, &values);
    }
    let ends = sluice_host::kafka::end_offsets(&config, std::slice::from_ref(&topic)).unwrap();
    assert_eq!(ends.get(&topic), Some(&vec![5, 0, 12]));
    let group = fresh_topic("marks-group");
    let reader =
        BoundedReader::open(&config, &plan(&topic, &group, serde_json::json!({}))).unwrap();
    let marks: Vec<(i32, i64, i64, i64, i64)> = reader
        .ranges()
        .iter()
        .map(|r| (r.partition, r.low, r.high, r.start, r.end))
        .collect();
    assert_eq!(
        marks,
        vec![(0, 0, 5, 0, 5), (1, 0, 0, 0, 0), (2, 0, 12, 0, 12)]
    );
}

/// A time before 1970 is before every record: the read starts at the first
/// one. Kafka gives negative times meanings of their own (-1 the end, -2
/// the start) and librdkafka refused the others, which a fetch answered
/// with 502.
#[test]
fn a_time_before_1970_reads_from_the_first_record() {
    let config = broker();
    let topic = topic_with_records(&config, 2);
    for millis in [-1, -2, -5, i64::MIN] {
        let mut read_plan = plan(&topic, &fresh_topic("g"), serde_json::json!({}));
        read_plan.start = Start::Timestamp {
            partitions: vec![1],
            millis,
        };
        let records = read(&config, &read_plan);
        assert_eq!(
            records,
            [(1, 0, "p1-0".to_owned()), (1, 1, "p1-1".to_owned())],
            "from {millis}"
        );
    }
}
