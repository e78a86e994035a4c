//! `sluice_host::search` against the real broker: a key is looked for in
//! the partition the producer's partitioner chose (confluent-kafka's own
//! producer, each of librdkafka's partitioners, null and empty keys too),
//! a filter finds exactly the matching records,
//! a budget stops the scan and its cursor goes on to the same records as
//! one unbounded search, and newest first reads backwards.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_host::fetch::reader_pool;
use sluice_host::kafka::{ProduceRecord, Producer, ReaderPool, ensure_topic};
use sluice_host::record::Header;
use sluice_host::search::{
    KeySearch, Order, Partitioner, SearchHow, SearchLimits, SearchQuery, Searched, StoppedBy,
    search,
};
use sluice_tests::{broker, fresh_topic, python_tools};

/// Produces one record per key (`None`: a null key) to a new topic of
/// `partitions` partitions with confluent-kafka's producer (librdkafka)
/// configured with `partitioner` and `settings`; the partition each record
/// was delivered to, in order.
fn produce_keys_with_confluent_kafka(
    topic: &str,
    partitions: i32,
    partitioner: &str,
    settings: Value,
    keys: &[Option<Vec<u8>>],
) -> Vec<i32> {
    let config = broker();
    ensure_topic(&config, topic, partitions).unwrap();
    let script = r#"
import json, sys
from confluent_kafka import Producer
brokers, topic, partitioner, settings = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
keys = [None if k is None else bytes.fromhex(k) for k in json.load(sys.stdin)]
producer = Producer({"bootstrap.servers": brokers, "partitioner": partitioner, **settings})
delivered = [None] * len(keys)
def report(i):
    def on_delivery(error, message):
        if error is not None:
            raise SystemExit(f"not delivered: {error}")
        delivered[i] = message.partition()
    return on_delivery
for i, key in enumerate(keys):
    producer.produce(topic, key=key, value=json.dumps({"i": i}).encode(), on_delivery=report(i))
    producer.poll(0)
if producer.flush(30) != 0:
    raise SystemExit("not all delivered")
json.dump(delivered, sys.stdout)
"#;
    let python = python_tools().expect("the tool virtualenv (scripts/setup.sh python-tools)");
    let keys_json = serde_json::to_vec(
        &keys
            .iter()
            .map(|k| k.as_ref().map(hex::encode))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut child = std::process::Command::new(python)
        .args(["-c", script, &config.bootstrap_servers, topic, partitioner])
        .arg(settings.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &keys_json).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let delivered: Vec<i32> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(delivered.len(), keys.len());
    delivered
}

/// `count` records keyed `key-<i>`, produced as [`produce_keys_with_confluent_kafka`]
/// does; the partition each key was delivered to.
fn produce_with_confluent_kafka(
    topic: &str,
    partitions: i32,
    partitioner: &str,
    count: usize,
) -> BTreeMap<String, i32> {
    let keys: Vec<String> = (0..count).map(|i| format!("key-{i}")).collect();
    let bytes: Vec<Option<Vec<u8>>> = keys.iter().map(|k| Some(k.clone().into_bytes())).collect();
    let delivered =
        produce_keys_with_confluent_kafka(topic, partitions, partitioner, json!({}), &bytes);
    keys.into_iter().zip(delivered).collect()
}

fn query(topic: &str) -> SearchQuery {
    SearchQuery {
        topic: topic.to_owned(),
        limit: u64::MAX,
        ..SearchQuery::default()
    }
}

fn found(searched: &Searched) -> Vec<(i32, i64)> {
    searched
        .records
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect()
}

/// Searches until no cursor is left, each time from the last one's; every
/// answer is checked by `check`. `(partition, offset)` of every match, in
/// the order returned, and the number of answers.
fn search_all(
    readers: &ReaderPool,
    first: SearchQuery,
    limits: &SearchLimits,
    check: impl Fn(&Searched),
) -> (Vec<(i32, i64)>, usize) {
    let mut all = Vec::new();
    let mut query = first;
    for answers in 1..=1000 {
        let searched = search(readers, &query, limits, &SearchHow::default()).unwrap();
        check(&searched);
        all.extend(found(&searched));
        match searched.cursor {
            None => {
                assert_eq!(searched.stopped_by, None);
                return (all, answers);
            }
            Some(cursor) => {
                assert!(searched.stopped_by.is_some(), "a cursor, but no limit");
                query.cursor = Some(cursor);
            }
        }
    }
    panic!("no end in 1000 answers");
}

#[test]
fn a_key_is_found_in_the_partition_each_partitioner_chose() {
    let readers = reader_pool(broker());
    for partitioner in Partitioner::ALL {
        let name = partitioner.name();
        let topic = fresh_topic("search-key");
        let delivered = produce_with_confluent_kafka(&topic, 32, name, 2000);
        for (key, partition) in &delivered {
            assert_eq!(
                partitioner.partition(key.as_bytes(), 32),
                Some(*partition),
                "{name}: key {key}"
            );
        }
        for key in ["key-0", "key-777", "key-1999"] {
            let partition = delivered[key];
            let mut asked = query(&topic);
            asked.key = Some(KeySearch {
                key: key.as_bytes().to_vec(),
                partitioners: Partitioner::ALL.to_vec(),
                all_partitions: false,
            });
            let searched = search(
                &readers,
                &asked,
                &SearchLimits::default(),
                &SearchHow::default(),
            )
            .unwrap();
            assert_eq!(searched.records.len(), 1, "{name}: {key}");
            assert_eq!(searched.records[0].partition, partition);
            assert_eq!(searched.records[0].key.as_deref(), Some(key.as_bytes()));
            assert!(
                searched.matched_by[0].contains(&partitioner),
                "{name}: {key} matched by {:?}",
                searched.matched_by[0]
            );
            // Only the partitioners' partitions were read, each to its end.
            let named: BTreeSet<i32> = searched.key_partitions.values().copied().collect();
            assert_eq!(
                searched.partitions.iter().copied().collect::<BTreeSet<_>>(),
                named
            );
            let in_named = delivered.values().filter(|p| named.contains(p)).count();
            assert_eq!(searched.scanned, in_named as u64, "{name}: {key}");
            assert!(searched.scanned < 2000 / 4, "{} of 2000", searched.scanned);
            assert_eq!(searched.cursor, None);

            // Asked with the one partitioner, exactly its partition is read.
            asked.key.as_mut().unwrap().partitioners = vec![partitioner];
            let searched = search(
                &readers,
                &asked,
                &SearchLimits::default(),
                &SearchHow::default(),
            )
            .unwrap();
            assert_eq!(searched.partitions, vec![partition]);
            assert_eq!(searched.matched_by, vec![vec![partitioner]]);
        }
    }
}

/// Where librdkafka puts a null key and an empty one under each of its
/// partitioners, beside what `partition_of` says: always the one partition
/// it names (the key hashed as no bytes), or, where it says `None`, spread
/// over many (at random: with no sticky partition, record by record).
#[test]
fn null_and_empty_keys_go_where_librdkafka_puts_them() {
    const RECORDS: usize = 64;
    for partitioner in Partitioner::ALL {
        for key in [None, Some(Vec::new())] {
            let topic = fresh_topic("search-null-key");
            let delivered = produce_keys_with_confluent_kafka(
                &topic,
                32,
                partitioner.name(),
                json!({"sticky.partitioning.linger.ms": 0}),
                &vec![key.clone(); RECORDS],
            );
            let placed: BTreeSet<i32> = delivered.into_iter().collect();
            let which = if key.is_some() { "empty" } else { "null" };
            match partitioner.partition_of(key.as_deref(), 32) {
                Some(partition) => assert_eq!(
                    placed,
                    BTreeSet::from([partition]),
                    "{partitioner}: a {which} key"
                ),
                None => assert!(
                    placed.len() > 4,
                    "{partitioner}: a {which} key placed at random, but in {placed:?}"
                ),
            }
        }
    }
}

#[test]
fn a_key_under_another_partitioner_is_found_when_every_partition_is_asked_for() {
    let readers = reader_pool(broker());
    let topic = fresh_topic("search-key-fallback");
    let config = broker();
    ensure_topic(&config, &topic, 8).unwrap();
    let key = b"placed-by-hand".to_vec();
    let predicted: BTreeSet<i32> = Partitioner::ALL
        .iter()
        .filter_map(|p| p.partition(&key, 8))
        .collect();
    let elsewhere = (0..8).find(|p| !predicted.contains(p)).unwrap();
    let record = ProduceRecord {
        timestamp: None,
        topic: topic.clone(),
        partition: Some(elsewhere),
        key: Some(key.clone()),
        value: Some(b"{}".to_vec()),
        headers: Vec::new(),
    };
    Producer::new(&config).unwrap().send_all(&[record]).unwrap();
    let mut asked = query(&topic);
    asked.key = Some(KeySearch {
        key,
        partitioners: Partitioner::ALL.to_vec(),
        all_partitions: false,
    });
    let limits = SearchLimits::default();
    let searched = search(&readers, &asked, &limits, &SearchHow::default()).unwrap();
    assert!(
        searched.records.is_empty(),
        "not in the partitioners' partitions"
    );
    asked.key.as_mut().unwrap().all_partitions = true;
    let searched = search(&readers, &asked, &limits, &SearchHow::default()).unwrap();
    assert_eq!(found(&searched), vec![(elsewhere, 0)]);
    assert_eq!(
        searched.matched_by,
        vec![Vec::<Partitioner>::new()],
        "no partitioner put it there"
    );
    assert_eq!(searched.partitions.len(), 8);
}

/// Each record of a test topic by `(partition, offset)`: its key, value
/// and `source` header.
type Produced = BTreeMap<(i32, i64), (String, Value, Option<String>)>;

/// A topic of 4 partitions and 2,400 JSON records (600 each), keyed, some
/// with a header; the records as produced, by `(partition, offset)`.
fn mixed_topic() -> (String, Produced) {
    let config = broker();
    let topic = fresh_topic("search-filter");
    ensure_topic(&config, &topic, 4).unwrap();
    let mut records = Vec::new();
    let mut expected = BTreeMap::new();
    for p in 0..4 {
        for offset in 0..600i64 {
            let i = i64::from(p) * 600 + offset;
            let country = ["NO", "SE", "DK"][(i % 3) as usize];
            let value = json!({
                "i": i,
                "kind": if i % 7 == 0 { "rare" } else { "common" },
                "customer": {"country": country, "name": format!("c{i}")},
            });
            let flag = (i % 11 == 0).then(|| format!("web-{i}"));
            records.push(ProduceRecord {
                timestamp: None,
                topic: topic.clone(),
                partition: Some(p),
                key: Some(format!("k{i}").into_bytes()),
                value: Some(value.to_string().into_bytes()),
                headers: flag
                    .iter()
                    .map(|f| Header {
                        key: "source".into(),
                        value: Some(f.clone().into_bytes()),
                    })
                    .collect(),
            });
            expected.insert((p, offset), (format!("k{i}"), value, flag));
        }
    }
    Producer::new(&config).unwrap().send_all(&records).unwrap();
    (topic, expected)
}

const FILTER: &str = r#"(value.kind == "rare" and value.customer.country != "SE") or headers.source contains "web-1""#;

fn matching(expected: &Produced) -> BTreeSet<(i32, i64)> {
    expected
        .iter()
        .filter(|(_, (_, value, flag))| {
            (value["kind"] == "rare" && value["customer"]["country"] != "SE")
                || flag.as_deref().is_some_and(|f| f.contains("web-1"))
        })
        .map(|(at, _)| *at)
        .collect()
}

#[test]
fn a_filter_finds_exactly_the_matching_records_among_many() {
    let readers = reader_pool(broker());
    let (topic, expected) = mixed_topic();
    let wanted = matching(&expected);
    assert!(
        wanted.len() > 100 && wanted.len() < 1000,
        "{}",
        wanted.len()
    );
    let mut asked = query(&topic);
    asked.filter = Some(FILTER.parse().unwrap());
    let searched = search(
        &readers,
        &asked,
        &SearchLimits::default(),
        &SearchHow::default(),
    )
    .unwrap();
    assert_eq!(searched.stopped_by, None);
    assert_eq!(searched.scanned, 2400);
    let got: BTreeSet<(i32, i64)> = found(&searched).into_iter().collect();
    assert_eq!(got.len(), searched.records.len(), "each record once");
    assert_eq!(got, wanted);
    // Each partition's matches in ascending offsets.
    for p in 0..4 {
        let offsets: Vec<i64> = found(&searched)
            .into_iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| o)
            .collect();
        assert!(offsets.is_sorted(), "{offsets:?}");
    }
    // The records are returned as stored.
    let first = &searched.records[0];
    let (key, value, _) = &expected[&(first.partition, first.offset)];
    assert_eq!(first.key.as_deref(), Some(key.as_bytes()));
    let stored: Value = serde_json::from_slice(first.value.as_deref().unwrap()).unwrap();
    assert_eq!(&stored, value);
}

#[test]
fn a_budget_stops_the_scan_and_the_cursor_goes_on_to_the_same_records() {
    let readers = reader_pool(broker());
    let (topic, expected) = mixed_topic();
    let wanted = matching(&expected);
    for order in [Order::OldestFirst, Order::NewestFirst] {
        let mut asked = query(&topic);
        asked.filter = Some(FILTER.parse().unwrap());
        asked.order = order;
        let (whole, answers) =
            search_all(&readers, asked.clone(), &SearchLimits::default(), |_| {});
        assert_eq!(answers, 1, "{order:?}: unbounded, one answer");
        assert_eq!(whole.iter().copied().collect::<BTreeSet<_>>(), wanted);

        // The request's budget of records: each answer scans at most 137.
        let budget = SearchQuery {
            max_scanned: Some(137),
            ..asked.clone()
        };
        let (paged, answers) = search_all(&readers, budget, &SearchLimits::default(), |searched| {
            assert!(searched.scanned <= 137, "{}", searched.scanned);
            if searched.cursor.is_some() {
                assert_eq!(searched.stopped_by, Some(StoppedBy::Records));
            }
        });
        assert!(answers >= 2400 / 137, "{order:?}: {answers} answers");
        assert_sorted_same(&paged, &whole, order);

        // The server's budget holds whatever the request asks for.
        let server = SearchLimits {
            max_scanned: 500,
            ..SearchLimits::default()
        };
        let greedy = SearchQuery {
            max_scanned: Some(u64::MAX),
            ..asked.clone()
        };
        let (paged, answers) = search_all(&readers, greedy, &server, |searched| {
            assert!(searched.scanned <= 500, "{}", searched.scanned);
        });
        assert!(answers >= 5, "{order:?}: {answers} answers");
        assert_sorted_same(&paged, &whole, order);

        // The request's limit of matches: pages of 7.
        let pages = SearchQuery {
            limit: 7,
            ..asked.clone()
        };
        let (paged, _) = search_all(&readers, pages, &SearchLimits::default(), |searched| {
            assert!(searched.records.len() <= 7);
            if searched.cursor.is_some() {
                assert_eq!(searched.stopped_by, Some(StoppedBy::Limit));
            }
        });
        assert_sorted_same(&paged, &whole, order);

        // The bytes returned: a few records' worth per answer.
        let server = SearchLimits {
            max_bytes: 1000,
            ..SearchLimits::default()
        };
        let (paged, _) = search_all(&readers, asked.clone(), &server, |searched| {
            let bytes: usize = searched.records.iter().map(|r| r.payload_len()).sum();
            assert!(bytes <= 1000, "{bytes}");
        });
        assert_sorted_same(&paged, &whole, order);
    }
}

#[test]
fn a_time_budget_stops_the_scan_and_the_cursor_goes_on() {
    let readers = reader_pool(broker());
    let config = broker();
    let topic = fresh_topic("search-time");
    ensure_topic(&config, &topic, 2).unwrap();
    // More than the test broker reads in the time limit below (it reads
    // about 17k records a second).
    let values: Vec<String> = (0..10_000)
        .map(|i| json!({"i": i, "rare": i % 97 == 0}).to_string())
        .collect();
    for p in 0..2 {
        sluice_tests::produce_to(&config, &topic, p, &values);
    }
    let wanted: BTreeSet<(i32, i64)> = (0..2)
        .flat_map(|p| (0..10_000i64).filter(|i| i % 97 == 0).map(move |i| (p, i)))
        .collect();
    let mut asked = query(&topic);
    asked.filter = Some("value.rare == true".parse().unwrap());
    // The server's time limit, shorter than the scan.
    let server = SearchLimits {
        max_time: Duration::from_millis(100),
        ..SearchLimits::default()
    };
    let started = std::time::Instant::now();
    let first = search(&readers, &asked, &server, &SearchHow::default()).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(first.stopped_by, Some(StoppedBy::Time));
    let cursor = first.cursor.clone().expect("a cursor to go on");
    asked.cursor = Some(cursor);
    let (rest, _) = search_all(&readers, asked, &SearchLimits::default(), |_| {});
    let mut got: Vec<(i32, i64)> = found(&first);
    got.extend(rest);
    let set: BTreeSet<(i32, i64)> = got.iter().copied().collect();
    assert_eq!(set.len(), got.len(), "each record once");
    assert_eq!(set, wanted);

    // A request's time stops an answer only once it has looked at a record
    // (a first fetch can take longer than asked, above all on the test
    // broker): asked for a millisecond, each answer still gets somewhere.
    let (topic, expected) = mixed_topic();
    let mut asked = query(&topic);
    asked.filter = Some(FILTER.parse().unwrap());
    asked.max_time = Some(Duration::from_millis(1));
    let (paged, _) = search_all(&readers, asked, &SearchLimits::default(), |searched| {
        assert!(searched.scanned > 0, "an answer that got nowhere");
    });
    assert_eq!(
        paged.into_iter().collect::<BTreeSet<_>>(),
        matching(&expected)
    );
}

/// `paged` holds what `whole` holds, once each, each partition's records
/// in the order's direction.
fn assert_sorted_same(paged: &[(i32, i64)], whole: &[(i32, i64)], order: Order) {
    let set: BTreeSet<(i32, i64)> = paged.iter().copied().collect();
    assert_eq!(set.len(), paged.len(), "each record once");
    assert_eq!(set, whole.iter().copied().collect::<BTreeSet<_>>());
    for p in 0..4 {
        let offsets: Vec<i64> = paged
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| *o)
            .collect();
        match order {
            Order::OldestFirst => assert!(offsets.is_sorted(), "{offsets:?}"),
            Order::NewestFirst => assert!(offsets.iter().rev().is_sorted(), "{offsets:?}"),
        }
    }
}

#[test]
fn newest_first_reads_each_partition_backwards_from_its_end() {
    let readers = reader_pool(broker());
    let config = broker();
    let topic = fresh_topic("search-newest");
    ensure_topic(&config, &topic, 1).unwrap();
    // More than a window (500), stamped a second apart.
    let values: Vec<String> = (0..1234).map(|i| json!({"i": i}).to_string()).collect();
    let base = 1_700_000_000_000i64;
    sluice_tests::produce_stamped(&config, &topic, 0, &values, |i| {
        Some(base + 1000 * i as i64)
    });
    let mut asked = query(&topic);
    asked.order = Order::NewestFirst;
    asked.limit = 3;
    let searched = search(
        &readers,
        &asked,
        &SearchLimits::default(),
        &SearchHow::default(),
    )
    .unwrap();
    assert_eq!(found(&searched), vec![(0, 1233), (0, 1232), (0, 1231)]);
    // Only the last window was read: the scan looked at three records.
    assert_eq!(searched.scanned, 3);
    assert_eq!(searched.next_offsets(), BTreeMap::from([(0, 1230)]));

    asked.limit = u64::MAX;
    let searched = search(
        &readers,
        &asked,
        &SearchLimits::default(),
        &SearchHow::default(),
    )
    .unwrap();
    let offsets: Vec<i64> = searched.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..1234).rev().collect::<Vec<i64>>());

    // From a time, newest first: back to that time and no further.
    asked.from_timestamp = Some(base + 1000 * 1000);
    asked.filter = Some("value.i >= 0".parse().unwrap());
    let searched = search(
        &readers,
        &asked,
        &SearchLimits::default(),
        &SearchHow::default(),
    )
    .unwrap();
    let offsets: Vec<i64> = searched.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (1000..1234).rev().collect::<Vec<i64>>());

    // From a time, oldest first: from that time on.
    asked.order = Order::OldestFirst;
    asked.limit = 2;
    let searched = search(
        &readers,
        &asked,
        &SearchLimits::default(),
        &SearchHow::default(),
    )
    .unwrap();
    assert_eq!(found(&searched), vec![(0, 1000), (0, 1001)]);
}

#[test]
fn a_filter_sees_avro_values_decoded_through_the_registry() {
    use apache_avro::Schema;
    use apache_avro::types::Value as Avro;
    use sluice_tests::schema_registry::{confluent_avro, start};

    let schema = r#"{"type":"record","name":"Booking","fields":[{"name":"id","type":"long"},{"name":"city","type":"string"}]}"#;
    let registry = start(vec![(5, schema.to_owned())]);
    let parsed = Schema::parse_str(schema).unwrap();
    let config = broker();
    let topic = fresh_topic("search-avro");
    ensure_topic(&config, &topic, 1).unwrap();
    let values: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            let city = if i % 10 == 3 { "Bergen" } else { "Oslo" };
            let record = Avro::Record(vec![
                ("id".into(), Avro::Long(i)),
                ("city".into(), Avro::String(city.into())),
            ]);
            confluent_avro(5, &parsed, record)
        })
        .collect();
    sluice_tests::produce_to(&config, &topic, 0, &values);
    let mut asked = query(&topic);
    asked.filter = Some(r#"value.city == "Bergen""#.parse().unwrap());
    let readers = reader_pool(config);
    let limits = SearchLimits::default();
    // As stored, the values are Avro frames: nothing matches.
    let stored = search(&readers, &asked, &limits, &SearchHow::default()).unwrap();
    assert!(stored.records.is_empty());
    let how = SearchHow {
        avro: Some(std::sync::Arc::new(
            sluice_host::codec::SchemaRegistry::new(&registry.url).unwrap(),
        )),
        lake: None,
    };
    let decoded = search(&readers, &asked, &limits, &how).unwrap();
    assert_eq!(found(&decoded), vec![(0, 3), (0, 13), (0, 23)]);
    let value: Value =
        serde_json::from_slice(decoded.records[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(value, json!({"id": 3, "city": "Bergen"}));
}
