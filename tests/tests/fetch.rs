//! `sluice_host::fetch` against the real broker: its limits hold over the
//! whole request (every partition's records together, headers counted),
//! the time limit holds while a poll waits, and a limited answer says
//! where to go on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sluice_host::fetch::{Fetch, FetchLimits, FetchQuery, Fetched, LimitedBy, fetch, reader_pool};
use sluice_host::kafka::{ProduceRecord, Producer, ReaderPool, Start, ensure_topic};
use sluice_host::record::Header;
use sluice_tests::{broker, fresh_topic};

/// A topic of `partitions` partitions with `per_partition` records each:
/// values `p<partition>-<index>`, and a header of `header_bytes` bytes.
fn topic(partitions: i32, per_partition: usize, header_bytes: usize) -> String {
    let config = broker();
    let topic = fresh_topic("fetch-limits");
    ensure_topic(&config, &topic, partitions).unwrap();
    let records: Vec<ProduceRecord> = (0..partitions)
        .flat_map(|p| (0..per_partition).map(move |i| (p, i)))
        .map(|(p, i)| ProduceRecord {
            timestamp: None,
            topic: topic.clone(),
            partition: Some(p),
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("p{p}-{i}").into_bytes()),
            headers: if header_bytes == 0 {
                Vec::new()
            } else {
                vec![Header {
                    key: "trace-blob".into(),
                    value: Some(vec![b'h'; header_bytes]),
                }]
            },
        })
        .collect();
    Producer::new(&config).unwrap().send_all(&records).unwrap();
    topic
}

fn from_start(topic: &str, partitions: i32, count: u64) -> FetchQuery {
    FetchQuery {
        topic: topic.to_owned(),
        start: Start::Offsets((0..partitions).map(|p| (p, 0)).collect()),
        count,
    }
}

/// Fetches until the answer is complete, each time from the offsets the
/// last one gave; every answer is checked against `check`. Returns
/// `(partition, offset)` of every record, in the order returned.
fn fetch_all(
    readers: &ReaderPool,
    first: FetchQuery,
    limits: &FetchLimits,
    check: impl Fn(&Fetched),
) -> Vec<(i32, i64)> {
    let mut seen = Vec::new();
    let mut query = first;
    for _ in 0..100 {
        let fetched = fetch(readers, &query, limits, &Fetch::default()).unwrap();
        check(&fetched);
        seen.extend(fetched.records.iter().map(|r| (r.partition, r.offset)));
        if fetched.limited_by.is_none() {
            assert!(
                fetched.next_offsets.is_empty(),
                "{:?}",
                fetched.next_offsets
            );
            return seen;
        }
        assert!(
            !fetched.next_offsets.is_empty(),
            "limited, but nowhere to go on"
        );
        query.start = Start::Offsets(fetched.next_offsets.clone());
    }
    panic!("no complete answer in 100 fetches");
}

fn everything(partitions: i32, per_partition: i64) -> BTreeSet<(i32, i64)> {
    (0..partitions)
        .flat_map(|p| (0..per_partition).map(move |o| (p, o)))
        .collect()
}

fn exactly_once(seen: &[(i32, i64)]) -> BTreeSet<(i32, i64)> {
    let set: BTreeSet<(i32, i64)> = seen.iter().copied().collect();
    assert_eq!(set.len(), seen.len(), "a record returned twice");
    set
}

/// `partition=0,…,63&count=10` held up to 640 records under a limit of 100:
/// the count was a cap per partition. Now it is over the request, and the
/// next offsets lead to every record exactly once.
#[test]
fn the_count_limit_holds_over_every_partition_together() {
    let readers = reader_pool(broker());
    let t = topic(64, 10, 0);
    let limits = FetchLimits {
        max_count: 100,
        ..FetchLimits::default()
    };
    let first = fetch(
        &readers,
        &from_start(&t, 64, 10),
        &limits,
        &Fetch::default(),
    )
    .unwrap();
    assert_eq!(first.records.len(), 100);
    assert_eq!(first.limited_by, Some(LimitedBy::Count));
    // Each partition read to its end is not in the next offsets; each other
    // one is, after what it returned.
    let mut returned: BTreeMap<i32, i64> = BTreeMap::new();
    for record in &first.records {
        *returned.entry(record.partition).or_default() += 1;
    }
    for p in 0..64 {
        let got = returned.get(&p).copied().unwrap_or(0);
        match first.next_offsets.get(&p) {
            Some(&next) => assert_eq!(next, got, "partition {p}"),
            None => assert_eq!(got, 10, "partition {p} is done only when read to its end"),
        }
    }

    let seen = fetch_all(&readers, from_start(&t, 64, 10), &limits, |f| {
        assert!(f.records.len() <= 100, "{} records", f.records.len());
    });
    assert_eq!(exactly_once(&seen), everything(64, 10));
}

/// Records whose headers are 16 KiB and whose keys and values are a few
/// bytes: the headers were not counted, so all 32 came back under a limit
/// of 64 KiB. Now the limit holds with them counted.
#[test]
fn headers_count_toward_the_byte_limit() {
    let readers = reader_pool(broker());
    let t = topic(8, 4, 16 << 10);
    let limits = FetchLimits {
        max_bytes: 64 << 10,
        ..FetchLimits::default()
    };
    let first = fetch(
        &readers,
        &from_start(&t, 8, 100),
        &limits,
        &Fetch::default(),
    )
    .unwrap();
    assert_eq!(first.limited_by, Some(LimitedBy::Bytes));
    assert_eq!(
        first.records.len(),
        3,
        "three records of just over 16 KiB fit"
    );

    let seen = fetch_all(&readers, from_start(&t, 8, 100), &limits, |f| {
        let bytes: usize = f.records.iter().map(|r| r.payload_len()).sum();
        assert!(bytes <= 64 << 10, "{bytes} bytes");
        assert!(f.records.iter().all(|r| r.headers.len() == 1));
    });
    assert_eq!(exactly_once(&seen), everything(8, 4));
}

/// 64 partitions of 1,000 records: the broker's first answer to a fresh
/// consumer takes longer than the time limit (on tansu, about a second;
/// on a real cluster, any broker slow to answer). The time was checked only
/// once a batch had records, so the read ran a second past a 200 ms limit;
/// now no poll waits past it.
#[test]
fn the_time_limit_holds_while_a_poll_waits() {
    let t = topic(64, 1_000, 0);
    let max_time = Duration::from_millis(200);
    let limits = FetchLimits {
        max_time,
        ..FetchLimits::none()
    };
    let readers = reader_pool(broker());
    let started = Instant::now();
    let fetched = fetch(
        &readers,
        &from_start(&t, 64, 1_000),
        &limits,
        &Fetch::default(),
    )
    .unwrap();
    let took = started.elapsed();
    eprintln!(
        "the read ended after {took:?} under a limit of {max_time:?}, with {} records",
        fetched.records.len()
    );
    assert_eq!(fetched.limited_by, Some(LimitedBy::Time), "{took:?}");
    // The promise is "within one poll" (milliseconds); the margin is for a
    // loaded machine.
    assert!(
        took < max_time + Duration::from_millis(500),
        "the read took {took:?} under a limit of {max_time:?}"
    );
    assert!(
        fetched.next_offsets.len() + finished(&fetched, 1_000) == 64,
        "every partition is either done or in next_offsets: {:?}",
        fetched.next_offsets
    );
    // What came back is where the next offsets say the read got to.
    for record in &fetched.records {
        if let Some(&next) = fetched.next_offsets.get(&record.partition) {
            assert!(record.offset < next);
        }
    }
}

/// Partitions that `fetched` read to their end of `per_partition` records.
fn finished(fetched: &Fetched, per_partition: usize) -> usize {
    let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
    for record in &fetched.records {
        *counts.entry(record.partition).or_default() += 1;
    }
    counts
        .values()
        .filter(|&&count| count == per_partition)
        .count()
}
