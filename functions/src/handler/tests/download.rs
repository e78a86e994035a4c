//! `GET /api/search/download` (and the search's `offset`, which the page
//! starts both at) in-process against the real broker: the
//! whole result streamed in more pages than one answer holds, read back in
//! each format (CSV, JSON lines, Parquet through the parquet crate); the
//! budgets held over the whole file and the cursor in its `sluice.end`
//! going on where it stopped; every bad parameter a 400 naming it.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use sluice_host::fetch::FetchLimits;
use sluice_host::kafka::{ProduceRecord, Producer, ensure_topic};
use sluice_host::record::Header;
use sluice_tests::{broker, fresh_topic};

use super::{Answered, answer};
use crate::handler::AppConfig;

const KEY: &str = "download-key-0123456789abcdef0123456";

/// An app whose answers hold at most `page` matches: a download of more
/// takes several pages.
fn app(page: u64, max_bytes: usize) -> AppConfig {
    let limits = FetchLimits {
        max_count: page,
        max_bytes,
        max_time: Duration::from_secs(60),
    };
    super::data_app(KEY, limits)
}

async fn get(app: &AppConfig, query: &str) -> Answered {
    super::get_with_key(app, KEY, &format!("/api/search/download?{query}")).await
}

/// Two partitions, `per_partition` records each: key `k<i>`, value
/// `{"p": p, "i": i, "even": bool}`, a header `source: test`.
fn topic(per_partition: usize) -> String {
    let config = broker();
    let topic = fresh_topic("download");
    ensure_topic(&config, &topic, 2).unwrap();
    let records: Vec<ProduceRecord> = (0..2)
        .flat_map(|p| {
            let topic = topic.clone();
            (0..per_partition).map(move |i| ProduceRecord {
                timestamp: None,
                topic: topic.clone(),
                partition: Some(p),
                key: Some(format!("k{i}").into_bytes()),
                value: Some(
                    json!({"p": p, "i": i, "even": i % 2 == 0})
                        .to_string()
                        .into_bytes(),
                ),
                headers: vec![Header {
                    key: "source".into(),
                    value: Some(b"test".to_vec()),
                }],
            })
        })
        .collect();
    Producer::new(&config).unwrap().send_all(&records).unwrap();
    topic
}

/// JSON lines: the records' `(partition, offset)` and the summary.
fn json_lines(body: &Answered) -> (Vec<(i64, i64)>, Value) {
    let mut lines: Vec<Value> = body
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let end = lines.pop().expect("the summary line");
    let records = lines
        .iter()
        .map(|r| {
            (
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    (records, end["sluice.end"].clone())
}

/// CSV: the records' `(partition, offset)` and the summary of the last row.
fn csv_rows(body: &Answered) -> (Vec<(i64, i64)>, Value) {
    let text = body.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("partition,offset,timestamp,key,value"));
    let mut rows: Vec<&str> = lines.collect();
    let end = rows.pop().expect("the summary row");
    let summary = end
        .strip_prefix(",,,sluice.end,")
        .unwrap_or_else(|| panic!("the last row is the summary: {end}"));
    // One quoted field: its quotes doubled.
    let summary = summary.trim_matches('"').replace("\"\"", "\"");
    let records = rows
        .iter()
        .map(|row| {
            let mut fields = row.splitn(3, ',');
            let partition = fields.next().unwrap().parse().unwrap();
            let offset = fields.next().unwrap().parse().unwrap();
            (partition, offset)
        })
        .collect();
    (records, serde_json::from_str(&summary).unwrap())
}

/// Parquet through the parquet crate: the records' `(partition, offset)`
/// and the summary in the file's key-value metadata.
fn parquet_rows(body: &Answered) -> (Vec<(i64, i64)>, Value) {
    use arrow_array::{Int32Array, Int64Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body.body.clone())).unwrap();
    let summary = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == "sluice.end"))
        .and_then(|kv| kv.value.clone())
        .expect("sluice.end in the file's metadata");
    let mut records = Vec::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let partitions = batch
            .column_by_name("partition")
            .unwrap()
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap()
            .clone();
        let offsets = batch
            .column_by_name("offset")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .clone();
        for i in 0..batch.num_rows() {
            records.push((i64::from(partitions.value(i)), offsets.value(i)));
        }
    }
    (records, serde_json::from_str(&summary).unwrap())
}

fn read_back(format: &str, body: &Answered) -> (Vec<(i64, i64)>, Value) {
    match format {
        "csv" => csv_rows(body),
        "ndjson" => json_lines(body),
        "parquet" => parquet_rows(body),
        other => panic!("{other}"),
    }
}

fn every(per_partition: i64) -> BTreeSet<(i64, i64)> {
    (0..2)
        .flat_map(|p| (0..per_partition).map(move |o| (p, o)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_result_is_streamed_past_one_answers_limit_in_every_format() {
    // Answers of 40 matches; 300 records: at least 8 pages.
    let app = app(40, 16 << 20);
    let topic = topic(150);
    for (format, content_type) in [
        ("csv", "text/csv; charset=utf-8"),
        ("ndjson", "application/x-ndjson"),
        ("parquet", "application/vnd.apache.parquet"),
    ] {
        let answered = get(&app, &format!("topic={topic}&format={format}")).await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
        assert_eq!(answered.content_type, content_type);
        let disposition = answered.headers["content-disposition"].to_str().unwrap();
        assert!(disposition.contains(&topic), "{disposition}");
        let (records, end) = read_back(format, &answered);
        assert_eq!(records.len(), 300, "{format}: every record, once");
        if format == "ndjson" {
            let lines = answered.text();
            let with_header = lines
                .lines()
                .filter(|l| l.contains(r#""headers":{"source":"test"}"#));
            assert_eq!(with_header.count(), 300, "each record's headers");
        }
        assert_eq!(
            records.iter().copied().collect::<BTreeSet<_>>(),
            every(150),
            "{format}"
        );
        assert_eq!(end["complete"], true, "{format}: {end}");
        assert_eq!(end["returned"], 300, "{format}: {end}");
        assert_eq!(end["cursor"], Value::Null, "{format}: {end}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_download_keeps_the_search_budget_and_its_cursor_goes_on() {
    let app = app(25, 16 << 20);
    let topic = topic(200);
    let filter = "value.even == true";
    let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
    // 100 records looked at over the whole file, not per page.
    let mut cursor: Option<String> = None;
    let mut seen = BTreeSet::new();
    let mut downloads = 0;
    loop {
        let mut query = format!("topic={topic}&format=ndjson&where={encoded}&max_scanned=100");
        if let Some(cursor) = &cursor {
            let cursor: String = url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
            query.push_str(&format!("&cursor={cursor}"));
        }
        let answered = get(&app, &query).await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
        downloads += 1;
        let (records, end) = json_lines(&answered);
        assert!(end["scanned"].as_u64().unwrap() <= 100, "{end}");
        for record in records {
            assert_eq!(record.1 % 2, 0, "only matches: {record:?}");
            assert!(seen.insert(record), "{record:?} twice");
        }
        match end["cursor"].as_str() {
            Some(next) => {
                assert_eq!(end["complete"], false, "{end}");
                assert_eq!(end["stopped_by"], "records", "{end}");
                cursor = Some(next.to_owned());
            }
            None => {
                assert_eq!(end["complete"], true, "{end}");
                break;
            }
        }
        assert!(downloads < 20, "the cursor went on: {end}");
    }
    assert!(downloads >= 4, "400 records in budgets of 100: {downloads}");
    let evens: BTreeSet<(i64, i64)> = every(200).into_iter().filter(|(_, o)| o % 2 == 0).collect();
    assert_eq!(seen, evens, "every match once, over the downloads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_stops_at_its_limit_and_its_time_and_says_so() {
    let app = app(30, 16 << 20);
    let topic = topic(100);
    // The request's limit counts the whole file's matches.
    let answered = get(&app, &format!("topic={topic}&format=csv&limit=70")).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let (records, end) = csv_rows(&answered);
    assert_eq!(records.len(), 70);
    assert_eq!(end["stopped_by"], "limit", "{end}");
    assert_eq!(end["complete"], false, "{end}");
    assert!(end["cursor"].is_string(), "{end}");

    // The time: a millisecond ends the download once a record was looked
    // at, with what it read and a cursor.
    let answered = get(
        &app,
        &format!("topic={topic}&format=parquet&max_seconds=0.001"),
    )
    .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let (records, end) = parquet_rows(&answered);
    assert_eq!(end["stopped_by"], "time", "{end}");
    assert!(records.len() < 200, "{}", records.len());
    assert!(end["cursor"].is_string(), "{end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_larger_than_an_answer_stops_the_download_naming_the_bytes() {
    // An answer holds 300 bytes; offset 5 of partition 0 alone is larger.
    let app = app(1000, 300);
    let config = broker();
    let topic = fresh_topic("download-big");
    ensure_topic(&config, &topic, 1).unwrap();
    let records: Vec<ProduceRecord> = (0..10)
        .map(|i| ProduceRecord {
            timestamp: None,
            topic: topic.clone(),
            partition: Some(0),
            key: None,
            value: Some(if i == 5 {
                json!({"big": "x".repeat(1000)}).to_string().into_bytes()
            } else {
                json!({"i": i}).to_string().into_bytes()
            }),
            headers: Vec::new(),
        })
        .collect();
    Producer::new(&config).unwrap().send_all(&records).unwrap();
    let answered = get(&app, &format!("topic={topic}&format=ndjson")).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let (records, end) = json_lines(&answered);
    assert_eq!(records, (0..5).map(|o| (0, o)).collect::<Vec<_>>());
    assert_eq!(end["stopped_by"], "bytes", "{end}");
    assert_eq!(end["next_offsets"]["0"], 5, "{end}");
}

#[tokio::test]
async fn bad_parameters_are_refused_before_the_file_starts() {
    let app = app(100, 16 << 20);
    let topic = topic(3);
    for (query, named) in [
        (format!("topic={topic}&format=xml"), "`format`"),
        (format!("topic={topic}&where=value.x%20%3D%3D"), "`where`"),
        (format!("topic={topic}&order=sideways"), "`order`"),
        (format!("topic={topic}&max_seconds=-1"), "`max_seconds`"),
        (
            format!("topic={topic}&value_format=avro"),
            "`value_format=avro`",
        ),
    ] {
        let answered = get(&app, &query).await;
        assert_eq!(answered.status, StatusCode::BAD_REQUEST, "{query}");
        let error = answered.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(error.contains(named), "{query}: {error}");
    }
    let missing = fresh_topic("download-missing");
    let answered = get(&app, &format!("topic={missing}")).await;
    assert_eq!(
        answered.status,
        StatusCode::NOT_FOUND,
        "{}",
        answered.text()
    );
    assert!(answered.text().contains(&missing), "{}", answered.text());

    let anonymous = Request::get(format!("/api/search/download?topic={topic}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        answer(&app, anonymous).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_search_and_a_download_start_at_the_offsets_given() {
    let app = app(100, 16 << 20);
    let topic = topic(10);
    let request = |uri: String| {
        Request::get(uri)
            .header("x-functions-key", KEY)
            .body(Body::empty())
            .unwrap()
    };
    let answered = answer(
        &app,
        request(format!(
            "/api/search?topic={topic}&partition=0,1&offset=7,8"
        )),
    )
    .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let body = answered.json();
    let found: Vec<(i64, i64)> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(found, [(0, 7), (0, 8), (0, 9), (1, 8), (1, 9)], "{body}");
    assert_eq!(body["complete"], true, "{body}");

    let answered = get(
        &app,
        &format!("topic={topic}&partition=1&offset=6&format=ndjson"),
    )
    .await;
    let (records, end) = json_lines(&answered);
    assert_eq!(records, [(1, 6), (1, 7), (1, 8), (1, 9)], "{end}");

    for (query, named) in [
        (
            format!("topic={topic}&offset=3"),
            "`offset` needs `partition`",
        ),
        (
            format!("topic={topic}&partition=0&offset=3&order=newest"),
            "`order=newest`",
        ),
        (format!("topic={topic}&partition=0&offset=-1"), "`offset`"),
        (
            format!("topic={topic}&partition=0,1&offset=1,2,3"),
            "`offset` has 3 values",
        ),
        (
            format!("topic={topic}&partition=0&offset=1&cursor=oldest:0=1-2"),
            "`cursor`",
        ),
        (
            format!("topic={topic}&partition=0&offset=1&from_timestamp=5"),
            "`from_timestamp`",
        ),
    ] {
        let answered = answer(&app, request(format!("/api/search?{query}"))).await;
        assert_eq!(answered.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            answered.text().contains(named),
            "{query}: {}",
            answered.text()
        );
    }
    let answered = answer(
        &app,
        request(format!("/api/search?topic={topic}&partition=5&offset=0")),
    )
    .await;
    assert_eq!(
        answered.status,
        StatusCode::NOT_FOUND,
        "{}",
        answered.text()
    );
    assert!(
        answered.text().contains("no partition 5"),
        "{}",
        answered.text()
    );
}
