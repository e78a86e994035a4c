//! The fetch page driven in headless Chromium by keyboard, against the
//! real broker and a schema registry: a topic picked from the list, a key
//! searched, Avro toggled, a value opened, a record's detail view and its
//! copy button, a filter's error shown at its position, the whole result
//! downloaded as Parquet and read back by pyarrow, errors at the field
//! they name.

use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use serde_json::{Value, json};
use sluice_host::fetch::{FetchLimits, reader_pool};
use sluice_host::kafka::{ProduceRecord, Producer, ensure_topic};
use sluice_host::record::Header;
use sluice_host::search::Partitioner;
use sluice_tests::schema_registry::{confluent_avro, start};
use sluice_tests::{broker, fresh_topic, python_tools};

use super::browser::Browser;
use super::screenshot_path;
use crate::handler::data::DataApi;
use crate::handler::{AppConfig, PayloadLimit, router};

const KEY: &str = "page-key-0123456789abcdef0123456789ab";
const USER: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"tags","type":{"type":"array","items":"string"}}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_picks_a_topic_searches_a_key_shows_a_record_and_downloads_by_keyboard() {
    let registry = start(vec![(7, USER.to_owned())]);
    let schema = Schema::parse_str(USER).unwrap();
    let config = broker();
    // Two topics under a fresh prefix: the picker lists both (on a
    // cluster with more topics than one list holds, once the prefix is
    // typed).
    let prefix = fresh_topic("page");
    let topic = format!("{prefix}-users");
    let other = format!("{prefix}-orders");
    ensure_topic(&config, &topic, 4).unwrap();
    ensure_topic(&config, &other, 1).unwrap();
    let records: Vec<ProduceRecord> = (0..40)
        .map(|i| {
            let key = format!("user-{i}");
            let user = Avro::Record(vec![
                ("id".into(), Avro::Long(i)),
                ("name".into(), Avro::String(format!("name-{i}"))),
                (
                    "tags".into(),
                    Avro::Array(vec![Avro::String("a".into()), Avro::String("b".into())]),
                ),
            ]);
            ProduceRecord {
                timestamp: None,
                topic: topic.clone(),
                partition: Partitioner::Murmur2.partition(key.as_bytes(), 4),
                key: Some(key.into_bytes()),
                value: Some(confluent_avro(7, &schema, user)),
                headers: vec![Header {
                    key: "source".into(),
                    value: Some(b"web".to_vec()),
                }],
            }
        })
        .collect();
    Producer::new(&config).unwrap().send_all(&records).unwrap();
    let partition = Partitioner::Murmur2.partition(b"user-7", 4).unwrap();

    let client = sluice_host::codec::SchemaRegistry::new(&registry.url).unwrap();
    // Answers of 10 matches: the download of 34 takes several.
    let app = AppConfig {
        topics: "topics.json".into(),
        connections: "connections.json".into(),
        out: None,
        enrich: None,
        admin: None,
        data: Some(Arc::new(DataApi {
            readers: Arc::new(reader_pool(broker())),
            limits: FetchLimits {
                max_count: 10,
                ..FetchLimits::default()
            },
            transforms: super::folder_transforms(),
            schema_registry: Some(Arc::new(client)),
            lake: None,
        })),
        transforms: super::folder_transforms(),
        metrics: None,
        access: super::access(KEY),
        payload_limit: PayloadLimit::built_in(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(axum::serve(listener, router(app)).into_future());
    let url = format!("http://127.0.0.1:{port}/#key={KEY}");
    let downloads = tempfile::tempdir().unwrap();
    let downloaded = downloads.path().join(format!("{topic}.parquet"));
    let shot = screenshot_path("fetch-page.png");
    let (page_topic, page_other) = (topic.clone(), other.clone());
    let save_to = downloads.path().to_str().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        let (topic, other) = (page_topic, page_other);
        let mut page = Browser::open(&url, 1500, 1000);
        page.call(
            "Browser.grantPermissions",
            json!({ "origin": format!("http://127.0.0.1:{port}"), "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"] }),
        );
        page.call(
            "Browser.setDownloadBehavior",
            json!({ "behavior": "allow", "downloadPath": save_to }),
        );
        page.wait_for(
            "document.getElementById('topic-pick')?.options.length > 1",
            "the topics listed",
        );
        // The name field narrows the list (when the cluster has more
        // topics than it holds) as the prefix is typed.
        page.focus("#topic");
        page.call("Input.insertText", json!({ "text": prefix }));
        let listed = format!(
            "[...(document.getElementById('topic-pick')?.options ?? [])].some((o) => o.value === {})",
            json!(topic)
        );
        page.wait_for(&listed, "the topic in the picker");
        let other_listed = page.eval(&listed.replace(&topic, &other));
        assert_eq!(other_listed, json!(true), "every topic is listed");

        // Picked by keyboard: arrows through the list to the topic.
        page.focus("#topic-pick");
        let options = page
            .eval("document.getElementById('topic-pick').options.length")
            .as_u64()
            .unwrap();
        for _ in 0..options {
            if page.eval("document.getElementById('topic').value") == json!(topic) {
                break;
            }
            page.press("ArrowDown");
        }
        assert_eq!(page.eval("document.getElementById('topic').value"), json!(topic));
        let info = page.eval("document.getElementById('topic-info').textContent");
        assert!(
            info.as_str().is_some_and(|i| i.starts_with("4 partitions")),
            "the partitions and their offsets: {info}"
        );
        let picked = page.eval(&format!(
            "document.getElementById('topic-pick').selectedOptions[0].textContent.includes({})",
            json!("4 partitions, 40 records")
        ));
        assert_eq!(picked, json!(true), "the picker shows partitions and records");

        // A key search, sent with Enter from the key field.
        page.focus("#search_key");
        page.type_and_enter("user-7");
        page.wait_for(
            "document.getElementById('status').textContent.includes('records found')",
            "the key search",
        );
        let status = page.eval("document.getElementById('status').textContent");
        assert!(
            status.as_str().is_some_and(|s| s.starts_with("1 records found")
                && s.contains(&format!("murmur2 puts the key in partition {partition}"))),
            "{status}"
        );
        let row = |page: &mut Browser| {
            page.eval(
                "[...document.querySelectorAll('#records tbody tr')].map((r) => [...r.cells].map((c) => c.textContent))",
            )
        };
        let rows = row(&mut page);
        assert_eq!(rows[0][0], json!(partition.to_string()), "{rows}");
        assert!(rows[0][3].as_str().unwrap().starts_with("user-7 (murmur2"), "{rows}");
        assert_eq!(rows[0][4], json!("source: web"), "the headers shown");
        assert_eq!(
            page.eval("document.querySelector('#records td.value details') === null"),
            json!(true),
            "not decoded before Avro is on: {rows}"
        );

        // Avro toggled with Space, searched again with Enter.
        page.focus("#avro");
        page.press(" ");
        assert_eq!(page.eval("document.getElementById('avro').checked"), json!(true));
        page.focus("#search_key");
        page.press("Enter");
        page.wait_for(
            "document.querySelector('#records td.value details')",
            "the decoded value",
        );
        let summary = page.eval("document.querySelector('#records td.value summary').textContent");
        assert_eq!(summary, json!(r#"{"id":7,"name":"name-7","tags":["a","b"]}"#));

        // The value opened by keyboard: pretty-printed.
        page.focus("#records td.value summary");
        page.press("Enter");
        assert_eq!(
            page.eval("document.querySelector('#records td.value details').open"),
            json!(true)
        );
        let pretty = page.eval("document.querySelector('#records td.value pre').textContent");
        assert_eq!(
            pretty.as_str().unwrap(),
            "{\n  \"id\": 7,\n  \"name\": \"name-7\",\n  \"tags\": [\n    \"a\",\n    \"b\"\n  ]\n}"
        );

        // The record's detail view: opened with Enter, copy buttons,
        // closed with Escape back to its button.
        page.focus("#records .detail-open");
        page.press("Enter");
        page.wait_for("document.getElementById('detail').open", "the detail view");
        assert_eq!(
            page.eval("document.activeElement.id"),
            json!("copy-value"),
            "the first copy button has the focus"
        );
        let title = page.eval("document.getElementById('detail-title').textContent");
        assert_eq!(title, json!(format!("Partition {partition}, offset {}", rows_offset(&rows))));
        page.press("Enter");
        page.wait_for(
            "document.getElementById('copied').textContent === 'Copied the value.'",
            "the value copied",
        );
        let copied = page.eval("navigator.clipboard.readText().catch((e) => 'unreadable: ' + e)");
        assert_eq!(
            copied,
            json!(r#"{"id":7,"name":"name-7","tags":["a","b"]}"#),
            "the clipboard holds the value"
        );
        page.focus("#copy-record");
        page.press("Enter");
        page.wait_for(
            "document.getElementById('copied').textContent === 'Copied the record.'",
            "the record copied",
        );
        let record: Value = serde_json::from_str(
            page.eval("navigator.clipboard.readText()").as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(record["key"], "user-7");
        assert_eq!(record["headers"]["source"], "web");
        assert_eq!(record["value"]["name"], "name-7");
        page.press("Escape");
        page.wait_for("!document.getElementById('detail').open", "the detail view closed");
        page.wait_for(
            "document.activeElement.classList.contains('detail-open')",
            "the focus back on the record's button",
        );

        // A filter that does not parse: its error at the filter, the text
        // at its position selected.
        page.eval("document.getElementById('search_key').value = ''");
        page.focus("#where");
        page.type_and_enter("value.id >");
        page.wait_for("document.getElementById('where-caret')", "the filter's error");
        let error = page.eval("document.getElementById('where-error').textContent");
        assert!(
            error.as_str().is_some_and(|e| e.contains("`where`") && e.contains("position 11")),
            "{error}"
        );
        assert_eq!(
            page.eval("document.getElementById('where').getAttribute('aria-invalid')"),
            json!("true")
        );
        assert_eq!(page.eval("document.activeElement.id"), json!("where"));
        assert_eq!(
            page.eval("document.getElementById('where').selectionStart"),
            json!(10)
        );
        let caret = page.eval("document.getElementById('where-caret').textContent");
        assert_eq!(caret, json!("value.id >\n          ^"));

        // Fixed: the matches, newest first.
        page.call("Input.insertText", json!({ "text": " 5" }));
        page.focus("#start-newest");
        page.press(" ");
        page.focus("#where");
        page.press("Enter");
        page.wait_for(
            "document.getElementById('status').textContent.includes('records found') && !document.getElementById('where-caret')",
            "the filtered search",
        );
        let status = page.eval("document.getElementById('status').textContent");
        assert!(
            status.as_str().is_some_and(|s| s.starts_with("10 records found")),
            "{status}"
        );
        page.focus("#records td.value summary");
        page.press("Enter");
        page.screenshot(&shot);

        // The whole result, by keyboard, as Parquet.
        page.focus("#dl-parquet");
        page.press("Enter");
        page.wait_for(
            "document.getElementById('status').dataset.downloaded",
            "the download",
        );
        let status = page.eval("document.getElementById('status').textContent");
        assert!(
            status
                .as_str()
                .is_some_and(|s| s.contains("34 records") && s.contains("searched to the end")),
            "{status}"
        );

        // Errors at the field they name: a count the page refuses itself,
        // a topic the cluster does not have.
        page.eval("document.getElementById('count').value = '0'");
        page.focus("#where");
        page.press("Enter");
        page.wait_for("document.getElementById('count-error')", "the count's error");
        assert_eq!(page.eval("document.activeElement.id"), json!("count"));
        page.eval("document.getElementById('count').value = '10'");
        let missing = format!("{topic}-missing");
        page.eval(&format!("document.getElementById('topic').value = {}", json!(missing)));
        page.focus("#where");
        page.press("Enter");
        page.wait_for("document.getElementById('topic-error')", "the topic's error");
        let error = page.eval("document.getElementById('topic-error').textContent");
        assert!(
            error.as_str().is_some_and(|e| e.contains(&missing) && e.contains("does not exist")),
            "{error}"
        );
        assert_eq!(
            page.eval("document.getElementById('topic').getAttribute('aria-invalid')"),
            json!("true")
        );
    })
    .await
    .unwrap();
    server.abort();

    // The file the browser saved, read by pyarrow.
    let start = std::time::Instant::now();
    while !downloaded.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} saved",
            downloaded.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let python = python_tools().expect("the tool virtualenv (scripts/setup.sh python-tools)");
    let script = "import json, sys, pyarrow.parquet as pq\n\
        t = pq.read_table(sys.argv[1])\n\
        end = json.loads(pq.ParquetFile(sys.argv[1]).metadata.metadata[b'sluice.end'])\n\
        values = sorted(json.loads(v)['id'] for v in t.column('value').to_pylist())\n\
        print(json.dumps({'rows': t.num_rows, 'ids': values, 'end': end}))";
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&downloaded)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(read["rows"], 34, "{read}");
    assert_eq!(read["ids"], json!((6..40).collect::<Vec<_>>()), "{read}");
    assert_eq!(read["end"]["complete"], true, "{read}");
    assert_eq!(read["end"]["returned"], 34, "{read}");
}

fn rows_offset(rows: &Value) -> String {
    rows[0][1].as_str().unwrap_or_default().to_owned()
}
