//! Fetch and search below a partition's earliest offset, read from the
//! export: from Parquet files found by their names, from a time layout's
//! range records, from a Delta table found by its log; each record as
//! Kafka had it, marked as the lake's, once; a cursor and every limit
//! across the lake and Kafka; a storage that does not answer, a file
//! holding fewer records than its name says and a log naming a removed
//! file, each told apart.
//!
//! The test broker (tansu) cannot delete records. Each test exports a
//! topic, then makes a partition answer a later earliest offset
//! (`crash::delete_below`, compiled only into test builds) as a real
//! cluster does once retention has deleted the records below it: the
//! watermarks every read plan asks for say so, so Kafka reads start there
//! exactly as on a real cluster, and the records below come from the
//! export only. (The other way, a new topic whose export location is an
//! old topic's files, cannot work here: a new topic starts at offset 0,
//! so no offset of it is below its earliest.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sluice_host::config::TopicEntry;
use sluice_host::config::{LateData, PartitionBy};
use sluice_host::crash::delete_below;
use sluice_host::export::{ExportOptions, TimeLayout};
use sluice_host::fetch::{
    Fetch, FetchError, FetchLimits, FetchQuery, Fetched, LimitedBy, fetch, reader_pool,
};
use sluice_host::kafka::{KafkaError, ProduceRecord, Producer, ReaderPool, Start, ensure_topic};
use sluice_host::lake::{Lake, LakeError, Source};
use sluice_host::record::{Header, KafkaRecord};
use sluice_host::search::{Cursor, Order, SearchHow, SearchLimits, SearchQuery, StoppedBy, search};
use sluice_host::storage::Storage;
use sluice_tests::exports::export;
use sluice_tests::lake::at_minute;
use sluice_tests::{azurite, broker, fresh_topic, read_all};

const PER_PARTITION: i64 = 30;

/// How the topic is exported (its topics.json entry's fields).
#[derive(Clone, Copy, Debug)]
enum Layout {
    Files,
    Hourly,
    Table,
}

struct Exported {
    topic: String,
    storage: Storage,
    lake: Arc<Lake>,
    readers: ReaderPool,
    /// Every record as Kafka had it, by (partition, offset).
    kafka: BTreeMap<(i32, i64), KafkaRecord>,
}

/// A topic of `partitions` partitions of 30 records each (keys `k0`-`k4`,
/// a header, a time 7 minutes apart, so four hours), exported to Azurite
/// in files of at most 10 records, then the records of each partition
/// below `earliest[partition]` deleted.
fn exported(layout: Layout, partitions: i32, earliest: &[i64]) -> Exported {
    let config = broker();
    let topic = fresh_topic("lake-read");
    ensure_topic(&config, &topic, partitions).unwrap();
    let records: Vec<ProduceRecord> = (0..partitions)
        .flat_map(|p| (0..PER_PARTITION).map(move |i| (p, i)))
        .map(|(p, i)| ProduceRecord {
            timestamp: Some(at_minute(i * 7)),
            topic: topic.clone(),
            partition: Some(p),
            key: Some(format!("k{}", i % 5).into_bytes()),
            value: Some(json!({"i": i, "p": p}).to_string().into_bytes()),
            headers: vec![
                Header {
                    key: "trace".into(),
                    value: Some(format!("t{i}").into_bytes()),
                },
                Header {
                    key: "empty".into(),
                    value: None,
                },
            ],
        })
        .collect();
    Producer::new(&config).unwrap().send_all(&records).unwrap();
    let kafka = read_all(&config, &topic)
        .into_iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect();
    let url = sluice_tests::azurite_url("lakeread", "landing");
    let storage = Storage::open(&url, &azurite::credentials()).unwrap();
    let mut options = ExportOptions::new("run-1");
    options.max_rows_per_file = 10;
    let entry = match layout {
        Layout::Files => json!({}),
        Layout::Hourly => {
            options.time = Some(TimeLayout {
                by: PartitionBy::Hour,
                field: None,
                late: LateData::Strict,
            });
            json!({"partition_by": "hour"})
        }
        Layout::Table => {
            options.format = sluice_host::config::ExportFormat::Delta;
            json!({"format": "delta"})
        }
    };
    let group = fresh_topic("g");
    let report = export(&config, &topic, &group, entry.clone(), &storage, &options);
    assert_eq!(
        report.records,
        (PER_PARTITION * i64::from(partitions)) as u64
    );
    for (partition, below) in earliest.iter().enumerate() {
        delete_below(&topic, partition as i32, *below);
    }
    let mut value = json!({"topic": topic, "group_id": group});
    value
        .as_object_mut()
        .unwrap()
        .extend(entry.as_object().unwrap().clone());
    let entry: TopicEntry = serde_json::from_value(value).unwrap();
    Exported {
        lake: Arc::new(Lake::new(storage.clone(), &[entry])),
        storage,
        topic,
        readers: reader_pool(config),
        kafka,
    }
}

impl Exported {
    fn how(&self) -> Fetch {
        Fetch {
            lake: Some(self.lake.clone()),
            ..Fetch::default()
        }
    }

    fn search_how(&self) -> SearchHow {
        SearchHow {
            avro: None,
            lake: Some(self.lake.clone()),
        }
    }

    fn at(&self, offsets: &[(i32, i64)], count: u64) -> FetchQuery {
        FetchQuery {
            topic: self.topic.clone(),
            start: Start::Offsets(offsets.iter().copied().collect()),
            count,
        }
    }

    /// Each record is the one Kafka had at its offset, from the lake
    /// exactly when its offset is below `earliest`.
    fn assert_as_in_kafka(&self, records: &[KafkaRecord], sources: &[Source], earliest: &[i64]) {
        assert_eq!(records.len(), sources.len());
        for (record, source) in records.iter().zip(sources) {
            let key = (record.partition, record.offset);
            assert_eq!(Some(record), self.kafka.get(&key), "{key:?}");
            let below = record.offset < earliest[record.partition as usize];
            let expected = if below { Source::Lake } else { Source::Kafka };
            assert_eq!(*source, expected, "{key:?}");
        }
    }
}

fn offsets(records: &[KafkaRecord]) -> Vec<(i32, i64)> {
    records.iter().map(|r| (r.partition, r.offset)).collect()
}

#[test]
fn a_fetch_below_the_earliest_reads_the_exported_files_then_kafka() {
    for layout in [Layout::Files, Layout::Hourly] {
        let earliest = [25, 12];
        let lake = exported(layout, 2, &earliest);
        let query = lake.at(&[(0, 5), (1, 0)], 100);
        // As today without the export: the offsets are gone from Kafka.
        for how in [
            Fetch::default(),
            Fetch {
                lake: Some(Arc::new(Lake::new(lake.storage.clone(), &[]))),
                ..Fetch::default()
            },
        ] {
            let error = fetch(&lake.readers, &query, &FetchLimits::default(), &how).unwrap_err();
            assert!(
                matches!(
                    error,
                    FetchError::Kafka(KafkaError::OffsetOutOfRange {
                        partition: 0,
                        offset: 5,
                        low: 25,
                        ..
                    })
                ),
                "{error}"
            );
        }
        let fetched = fetch(&lake.readers, &query, &FetchLimits::default(), &lake.how()).unwrap();
        let mut expected: Vec<(i32, i64)> = (5..PER_PARTITION).map(|o| (0, o)).collect();
        expected.extend((0..PER_PARTITION).map(|o| (1, o)));
        let mut got = offsets(&fetched.records);
        got.sort();
        assert_eq!(
            got, expected,
            "{layout:?}: each offset once, Kafka's where it has them"
        );
        lake.assert_as_in_kafka(&fetched.records, &fetched.sources, &earliest);
        assert_eq!(fetched.missing, [], "{layout:?}");
        assert_eq!((fetched.limited_by, fetched.next_offsets.len()), (None, 0));
        // Wholly below the earliest: the lake alone, from inside a file.
        let inside = fetch(
            &lake.readers,
            &lake.at(&[(0, 3)], 4),
            &FetchLimits::default(),
            &lake.how(),
        )
        .unwrap();
        assert_eq!(offsets(&inside.records), [(0, 3), (0, 4), (0, 5), (0, 6)]);
        assert_eq!(inside.sources, [Source::Lake; 4]);
    }
}

#[test]
fn a_search_below_the_earliest_reads_the_delta_table_by_its_log() {
    let earliest = [17];
    let lake = exported(Layout::Table, 1, &earliest);
    let mut query = SearchQuery {
        topic: lake.topic.clone(),
        key: Some(sluice_host::search::KeySearch {
            key: b"k2".to_vec(),
            partitioners: sluice_host::search::Partitioner::ALL.to_vec(),
            all_partitions: false,
        }),
        filter: Some("value.i > 3".parse().unwrap()),
        limit: u64::MAX,
        ..SearchQuery::default()
    };
    let wanted: Vec<(i32, i64)> = [7, 12, 17, 22, 27].map(|o| (0, o)).to_vec();
    let limits = SearchLimits::default();
    let found = search(&lake.readers, &query, &limits, &lake.search_how()).unwrap();
    assert_eq!(offsets(&found.records), wanted);
    lake.assert_as_in_kafka(&found.records, &found.sources, &earliest);
    assert_eq!(
        found.scanned, PER_PARTITION as u64,
        "every record looked at once"
    );
    assert!(found.cursor.is_none());
    // Newest first: Kafka's, then the lake's, downwards.
    query.order = Order::NewestFirst;
    let newest = search(&lake.readers, &query, &limits, &lake.search_how()).unwrap();
    let mut reversed = wanted.clone();
    reversed.reverse();
    assert_eq!(offsets(&newest.records), reversed);
    lake.assert_as_in_kafka(&newest.records, &newest.sources, &earliest);
    // From a time before the earliest record Kafka has: the lake's records
    // at or after it, then Kafka's.
    let by_time = SearchQuery {
        topic: lake.topic.clone(),
        from_timestamp: Some(at_minute(9 * 7)),
        limit: u64::MAX,
        ..SearchQuery::default()
    };
    let found = search(&lake.readers, &by_time, &limits, &lake.search_how()).unwrap();
    let from_nine: Vec<(i32, i64)> = (9..PER_PARTITION).map(|o| (0, o)).collect();
    assert_eq!(offsets(&found.records), from_nine);
    lake.assert_as_in_kafka(&found.records, &found.sources, &earliest);
    // A fetch from that time too, at most its count a partition.
    let from_time = |count| FetchQuery {
        topic: lake.topic.clone(),
        start: Start::Timestamp {
            partitions: vec![0],
            millis: at_minute(9 * 7),
        },
        count,
    };
    let fetched = fetch(
        &lake.readers,
        &from_time(12),
        &FetchLimits::default(),
        &lake.how(),
    )
    .unwrap();
    assert_eq!(
        offsets(&fetched.records),
        (9..21).map(|o| (0, o)).collect::<Vec<_>>()
    );
    lake.assert_as_in_kafka(&fetched.records, &fetched.sources, &earliest);
    let fetched = fetch(
        &lake.readers,
        &from_time(5),
        &FetchLimits::default(),
        &lake.how(),
    )
    .unwrap();
    assert_eq!(
        offsets(&fetched.records),
        (9..14).map(|o| (0, o)).collect::<Vec<_>>()
    );
    assert_eq!((fetched.limited_by, fetched.next_offsets.len()), (None, 0));
    // A fetch at offsets reads the table too.
    let fetched = fetch(
        &lake.readers,
        &lake.at(&[(0, 8)], 12),
        &FetchLimits::default(),
        &lake.how(),
    )
    .unwrap();
    assert_eq!(
        offsets(&fetched.records),
        (8..20).map(|o| (0, o)).collect::<Vec<_>>()
    );
    lake.assert_as_in_kafka(&fetched.records, &fetched.sources, &earliest);
}

/// Searches from `first`, passing each answer's cursor back as text,
/// until none is left; every match, with its source, in the order given.
fn search_all(
    lake: &Exported,
    first: SearchQuery,
    limits: &SearchLimits,
) -> (Vec<KafkaRecord>, Vec<Source>, usize) {
    let (mut records, mut sources, mut answers) = (Vec::new(), Vec::new(), 0);
    let mut query = first;
    loop {
        answers += 1;
        assert!(answers < 100, "a cursor that never ends");
        let found = search(&lake.readers, &query, limits, &lake.search_how()).unwrap();
        records.extend(found.records);
        sources.extend(found.sources);
        let Some(cursor) = found.cursor else {
            return (records, sources, answers);
        };
        query.cursor = Some(cursor.to_string().parse::<Cursor>().unwrap());
    }
}

#[test]
fn a_cursor_goes_from_the_lake_into_kafka_giving_each_record_once() {
    let earliest = [25, 12];
    let lake = exported(Layout::Files, 2, &earliest);
    let limits = SearchLimits::default();
    for order in [Order::OldestFirst, Order::NewestFirst] {
        let query = SearchQuery {
            topic: lake.topic.clone(),
            order,
            max_scanned: Some(7),
            limit: u64::MAX,
            ..SearchQuery::default()
        };
        let (records, sources, answers) = search_all(&lake, query, &limits);
        assert!(
            answers >= 9,
            "{order:?}: 60 records 7 at a time: {answers} answers"
        );
        let mut got = offsets(&records);
        let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for (p, o) in &got {
            per_partition.entry(*p).or_default().push(*o);
        }
        for (p, seen) in per_partition {
            let mut sorted = seen.clone();
            sorted.sort();
            if order == Order::NewestFirst {
                sorted.reverse();
            }
            assert_eq!(seen, sorted, "{order:?}: partition {p} in order");
        }
        got.sort();
        let all: Vec<(i32, i64)> = (0..2)
            .flat_map(|p| (0..PER_PARTITION).map(move |o| (p, o)))
            .collect();
        assert_eq!(got, all, "{order:?}: each record once");
        lake.assert_as_in_kafka(&records, &sources, &earliest);
    }
    // A fetch limited to 7 records goes on from its next offsets alike.
    let limits = FetchLimits {
        max_count: 7,
        ..FetchLimits::default()
    };
    let mut query = lake.at(&[(0, 0), (1, 0)], 100);
    let (mut records, mut sources) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let fetched: Fetched = fetch(&lake.readers, &query, &limits, &lake.how()).unwrap();
        assert!(fetched.records.len() <= 7);
        records.extend(fetched.records);
        sources.extend(fetched.sources);
        if fetched.next_offsets.is_empty() {
            break;
        }
        assert_eq!(fetched.limited_by, Some(LimitedBy::Count));
        // The next request asks for as many as are left of the first.
        query = lake.at(&fetched.next_offsets.into_iter().collect::<Vec<_>>(), 100);
    }
    let mut got = offsets(&records);
    got.sort();
    let all: Vec<(i32, i64)> = (0..2)
        .flat_map(|p| (0..PER_PARTITION).map(move |o| (p, o)))
        .collect();
    assert_eq!(got, all);
    lake.assert_as_in_kafka(&records, &sources, &earliest);
}

#[test]
fn every_limit_holds_over_the_lake() {
    let earliest = [25];
    let lake = exported(Layout::Files, 1, &earliest);
    let from_start = lake.at(&[(0, 0)], 100);
    let limited =
        |limits: FetchLimits| fetch(&lake.readers, &from_start, &limits, &lake.how()).unwrap();
    let by_count = limited(FetchLimits {
        max_count: 5,
        ..FetchLimits::default()
    });
    assert_eq!(
        offsets(&by_count.records),
        (0..5).map(|o| (0, o)).collect::<Vec<_>>()
    );
    assert_eq!(by_count.limited_by, Some(LimitedBy::Count));
    assert_eq!(by_count.next_offsets, BTreeMap::from([(0, 5)]));
    let one = lake.kafka[&(0, 0)].payload_len();
    let by_bytes = limited(FetchLimits {
        max_bytes: one * 3 + 1,
        ..FetchLimits::default()
    });
    assert_eq!(by_bytes.records.len(), 3);
    assert_eq!(by_bytes.limited_by, Some(LimitedBy::Bytes));
    assert_eq!(by_bytes.next_offsets, BTreeMap::from([(0, 3)]));
    let by_time = limited(FetchLimits {
        max_time: Duration::ZERO,
        ..FetchLimits::default()
    });
    assert_eq!(by_time.records, []);
    assert_eq!(by_time.limited_by, Some(LimitedBy::Time));
    assert_eq!(by_time.next_offsets, BTreeMap::from([(0, 0)]));
    // A search: the lake's records count toward each budget.
    let query = SearchQuery {
        topic: lake.topic.clone(),
        limit: u64::MAX,
        ..SearchQuery::default()
    };
    let budget = |q: SearchQuery, limits: SearchLimits| {
        search(&lake.readers, &q, &limits, &lake.search_how()).unwrap()
    };
    let scanned = budget(
        SearchQuery {
            max_scanned: Some(7),
            ..query.clone()
        },
        SearchLimits::default(),
    );
    assert_eq!(
        (scanned.scanned, scanned.stopped_by),
        (7, Some(StoppedBy::Records))
    );
    assert_eq!(
        scanned.cursor.unwrap().left,
        BTreeMap::from([(0, (7, PER_PARTITION))])
    );
    let server = budget(
        SearchQuery {
            max_scanned: Some(1_000),
            ..query.clone()
        },
        SearchLimits {
            max_scanned: 4,
            ..SearchLimits::default()
        },
    );
    assert_eq!(
        server.scanned, 4,
        "a request cannot raise the server's budget"
    );
    let matches = budget(
        SearchQuery {
            limit: 2,
            ..query.clone()
        },
        SearchLimits::default(),
    );
    assert_eq!(
        (matches.records.len(), matches.stopped_by),
        (2, Some(StoppedBy::Limit))
    );
    let bytes = budget(
        query.clone(),
        SearchLimits {
            max_bytes: one * 2 + 1,
            ..SearchLimits::default()
        },
    );
    assert_eq!(
        (bytes.records.len(), bytes.stopped_by),
        (2, Some(StoppedBy::Bytes))
    );
    assert_eq!(
        bytes.cursor.unwrap().left,
        BTreeMap::from([(0, (2, PER_PARTITION))])
    );
}

#[test]
fn a_store_that_does_not_answer_is_unavailable_not_missing() {
    let lake = exported(Layout::Files, 1, &[25]);
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = object_store::azure::MicrosoftAzureBuilder::new()
        .with_account(azurite::ACCOUNT)
        .with_access_key(azurite::KEY)
        .with_container_name("landing")
        .with_endpoint(format!("http://127.0.0.1:{port}/{}", azurite::ACCOUNT))
        .with_allow_http(true)
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .unwrap();
    let down = Storage::on_object_store("azure://landing/down", Arc::new(store));
    let entry: TopicEntry =
        serde_json::from_value(json!({"topic": lake.topic, "group_id": "g"})).unwrap();
    let how = Fetch {
        lake: Some(Arc::new(Lake::new(down, &[entry]))),
        ..Fetch::default()
    };
    let error = fetch(
        &lake.readers,
        &lake.at(&[(0, 0)], 5),
        &FetchLimits::default(),
        &how,
    )
    .unwrap_err();
    assert!(
        matches!(&error, FetchError::Lake(LakeError::Unavailable { store, .. }) if store == "azure://landing/down"),
        "{error}"
    );
    assert!(
        error.to_string().contains("azure://landing/down"),
        "{error}"
    );
    let search_how = SearchHow {
        avro: None,
        lake: how.lake.clone(),
    };
    let query = SearchQuery {
        topic: lake.topic.clone(),
        limit: u64::MAX,
        ..SearchQuery::default()
    };
    let error = search(&lake.readers, &query, &SearchLimits::default(), &search_how).unwrap_err();
    assert!(
        matches!(error, FetchError::Lake(LakeError::Unavailable { .. })),
        "{error}"
    );
}

/// Rewrites the Parquet file at `key` without the rows at `drop` (indexes):
/// what an export writes when compaction removed those records from the
/// topic before it read them (the file is named by the offsets read).
fn without_rows(storage: &Storage, key: &str, drop: std::ops::Range<usize>) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bytes = storage.get(key).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    writer.write(&batch.slice(0, drop.start)).unwrap();
    writer
        .write(&batch.slice(drop.end, batch.num_rows() - drop.end))
        .unwrap();
    writer.close().unwrap();
    storage.put(key, bytes::Bytes::from(out)).unwrap();
}

#[test]
fn offsets_the_export_does_not_hold_are_said_missing_never_invented() {
    let earliest = [25];
    let lake = exported(Layout::Files, 1, &earliest);
    let file = sluice_host::export::data_key(&lake.topic, 0, 10, 19);
    without_rows(&lake.storage, &file, 3..5);
    let fetched = fetch(
        &lake.readers,
        &lake.at(&[(0, 8)], 10),
        &FetchLimits::default(),
        &lake.how(),
    )
    .unwrap();
    assert_eq!(
        offsets(&fetched.records),
        [8, 9, 10, 11, 12, 15, 16, 17].map(|o| (0, o))
    );
    lake.assert_as_in_kafka(&fetched.records, &fetched.sources, &earliest);
    let [missing] = fetched.missing.as_slice() else {
        panic!("{:?}", fetched.missing);
    };
    assert_eq!(
        (missing.partition, missing.first, missing.last),
        (0, 13, 14)
    );
    assert!(missing.reason.contains(&file), "{}", missing.reason);
    // A search says the same.
    let query = SearchQuery {
        topic: lake.topic.clone(),
        limit: u64::MAX,
        ..SearchQuery::default()
    };
    let found = search(
        &lake.readers,
        &query,
        &SearchLimits::default(),
        &lake.search_how(),
    )
    .unwrap();
    assert_eq!(found.records.len() as i64, PER_PARTITION - 2);
    assert_eq!(found.missing.len(), 1);
    assert_eq!((found.missing[0].first, found.missing[0].last), (13, 14));

    // A Delta table whose log names a file that is gone.
    let table = exported(Layout::Table, 1, &earliest);
    let gone: Vec<String> = table
        .storage
        .list(&table.topic)
        .unwrap()
        .into_iter()
        .filter(|key| key.contains("/part-0-0-9-"))
        .collect();
    let [gone] = gone.as_slice() else {
        panic!("one file of offsets 0-9: {gone:?}");
    };
    table.storage.delete(gone).unwrap();
    let fetched = fetch(
        &table.readers,
        &table.at(&[(0, 0)], 12),
        &FetchLimits::default(),
        &table.how(),
    )
    .unwrap();
    assert_eq!(offsets(&fetched.records), [(0, 10), (0, 11)]);
    let [missing] = fetched.missing.as_slice() else {
        panic!("{:?}", fetched.missing);
    };
    assert_eq!((missing.first, missing.last), (0, 9));
    assert!(
        missing.reason.contains(gone.as_str()) && missing.reason.contains("the table's log"),
        "{}",
        missing.reason
    );
}
