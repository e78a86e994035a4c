//! `sluice import` against the real broker: fixture files written with the
//! real writers (apache-avro, the arrow Parquet writer), imported from a
//! local folder and from Azurite, read back from the topic.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apache_avro::types::{Record, Value as AvroValue};
use apache_avro::{Codec, Schema, Writer};
use arrow_array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::{Value, json};
use sluice_host::import::{
    FILE_HEADER, Format, ImportOptions, ImportReport, ROW_HEADER, import, progress_key,
};
use sluice_host::kafka::ensure_topic;
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_tests::{azurite, azurite_url, broker, fresh_topic, header_text, read_all};

/// One imported record: its key and value, by file and row.
#[derive(Debug, Clone, PartialEq)]
struct Imported {
    key: Option<String>,
    value: Value,
}

/// Every record of `topic` by file and row number; panics on a repeat.
fn by_file(topic: &str) -> BTreeMap<String, BTreeMap<u64, Imported>> {
    let mut files: BTreeMap<String, BTreeMap<u64, Imported>> = BTreeMap::new();
    for record in read_all(&broker(), topic) {
        let file = header_text(&record, FILE_HEADER).to_owned();
        let row: u64 = header_text(&record, ROW_HEADER).parse().unwrap();
        let imported = Imported {
            key: record.key.map(|k| String::from_utf8(k).unwrap()),
            value: serde_json::from_slice(record.value.as_deref().unwrap()).unwrap(),
        };
        let earlier = files.entry(file.clone()).or_default().insert(row, imported);
        assert!(earlier.is_none(), "{file} row {row} produced twice");
    }
    files
}

fn values(rows: &BTreeMap<u64, Imported>) -> Vec<Value> {
    rows.values().map(|r| r.value.clone()).collect()
}

fn run(folder: &str, topic: &str, options: &ImportOptions) -> ImportReport {
    import(
        &broker(),
        folder,
        &AzureCredentials::default(),
        topic,
        options,
        |_| {},
    )
    .expect("import ran")
}

fn topic() -> String {
    let topic = fresh_topic("import");
    ensure_topic(&broker(), &topic, 3).unwrap();
    topic
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn jsonl(rows: impl IntoIterator<Item = Value>) -> Vec<u8> {
    rows.into_iter()
        .map(|row| format!("{row}\n"))
        .collect::<String>()
        .into_bytes()
}

/// The expedia records as the data set ships them: an Avro object
/// container file, snappy-compressed as Spark writes them.
fn expedia_avro(ids: std::ops::Range<i64>) -> Vec<u8> {
    let schema = Schema::parse_str(
        r#"{"type": "record", "name": "topLevelRecord", "fields": [
            {"name": "id", "type": ["long", "null"]},
            {"name": "date_time", "type": ["string", "null"]},
            {"name": "orig_destination_distance", "type": ["double", "null"]},
            {"name": "srch_ci", "type": ["string", "null"]},
            {"name": "srch_co", "type": ["string", "null"]},
            {"name": "hotel_id", "type": ["long", "null"]}
        ]}"#,
    )
    .unwrap();
    let mut writer = Writer::with_codec(&schema, Vec::new(), Codec::Snappy);
    for id in ids {
        let mut record = Record::new(&schema).unwrap();
        let union = |index, value| AvroValue::Union(index, Box::new(value));
        record.put("id", union(0, AvroValue::Long(id)));
        record.put(
            "date_time",
            union(0, AvroValue::String("2017-08-22 17:05:23".into())),
        );
        let distance = if id % 2 == 0 {
            union(0, AvroValue::Double(id as f64 + 0.5))
        } else {
            union(1, AvroValue::Null)
        };
        record.put("orig_destination_distance", distance);
        record.put("srch_ci", union(0, AvroValue::String("2017-09-01".into())));
        record.put("srch_co", union(0, AvroValue::String("2017-09-05".into())));
        record.put("hotel_id", union(0, AvroValue::Long(id * 10)));
        writer.append(record).unwrap();
    }
    writer.into_inner().unwrap()
}

fn expedia_json(id: i64) -> Value {
    json!({
        "id": id,
        "date_time": "2017-08-22 17:05:23",
        "orig_destination_distance": if id % 2 == 0 { json!(id as f64 + 0.5) } else { Value::Null },
        "srch_ci": "2017-09-01",
        "srch_co": "2017-09-05",
        "hotel_id": id * 10,
    })
}

/// A snappy-compressed Parquet file (Spark's default) with a date column.
fn parquet_file(ids: std::ops::Range<i64>) -> Vec<u8> {
    let n = ids.end - ids.start;
    let columns: [(&str, ArrayRef); 4] = [
        ("id", Arc::new(Int64Array::from_iter_values(ids.clone()))),
        (
            "name",
            Arc::new(StringArray::from_iter(
                ids.clone()
                    .map(|i| (i % 3 != 0).then(|| format!("hotel {i}"))),
            )),
        ),
        (
            "price",
            Arc::new(Float64Array::from_iter_values(
                ids.clone().map(|i| i as f64 * 1.25),
            )),
        ),
        // 2024-01-01 is day 19723 of the Unix epoch.
        (
            "booked",
            Arc::new(Date32Array::from_iter_values(
                (0..n as i32).map(|d| 19723 + d),
            )),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

fn orders(from: i64, to: i64) -> Vec<u8> {
    jsonl(
        (from..to)
            .map(|i| json!({"order": format!("o-{i}"), "amount": i, "lines": [{"sku": "a"}]})),
    )
}

#[test]
fn each_format_arrives_as_json_with_its_fields_and_key() {
    each_format_arrives(ImportOptions::default().keep_budget);
}

/// With no budget to keep the checked rows, each file is read again to
/// produce them: the same records.
#[test]
fn each_format_arrives_the_same_when_files_are_read_twice() {
    each_format_arrives(0);
}

fn each_format_arrives(keep_budget: usize) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a-orders.jsonl", &orders(0, 3));
    write(dir.path(), "b/expedia.avro", &expedia_avro(100..105));
    write(dir.path(), "c-hotels.parquet", &parquet_file(0..4));
    write(dir.path(), "notes.txt", b"not imported");
    write(dir.path(), "b/_SUCCESS", b"");
    let topic = topic();
    let options = ImportOptions {
        key_field: Some("id".into()),
        keep_budget,
        ..ImportOptions::default()
    };

    let report = run(dir.path().to_str().unwrap(), &topic, &options);

    let imported: Vec<(&str, Format, u64)> = report
        .imported
        .iter()
        .map(|f| (f.path.as_str(), f.format, f.rows))
        .collect();
    assert_eq!(
        imported,
        [
            ("a-orders.jsonl", Format::JsonLines, 3),
            ("b/expedia.avro", Format::Avro, 5),
            ("c-hotels.parquet", Format::Parquet, 4),
        ]
    );
    assert_eq!(report.skipped, ["notes.txt"]);
    assert!(report.succeeded() && report.already_done.is_empty());
    assert_eq!(report.rows(), 12);

    let files = by_file(&topic);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["a-orders.jsonl", "b/expedia.avro", "c-hotels.parquet"]
    );
    let orders = &files["a-orders.jsonl"];
    assert_eq!(
        values(orders),
        (0..3)
            .map(|i| json!({"order": format!("o-{i}"), "amount": i, "lines": [{"sku": "a"}]}))
            .collect::<Vec<_>>()
    );
    assert!(
        orders.values().all(|r| r.key.is_none()),
        "no `id` field: no key"
    );

    let expedia = &files["b/expedia.avro"];
    assert_eq!(
        values(expedia),
        (100..105).map(expedia_json).collect::<Vec<_>>()
    );
    let keys: Vec<_> = expedia.values().map(|r| r.key.clone().unwrap()).collect();
    assert_eq!(keys, ["100", "101", "102", "103", "104"]);

    let hotels = &files["c-hotels.parquet"];
    assert_eq!(
        hotels[&0].value,
        json!({"id": 0, "name": null, "price": 0.0, "booked": "2024-01-01"})
    );
    assert_eq!(
        hotels[&2].value,
        json!({"id": 2, "name": "hotel 2", "price": 2.5, "booked": "2024-01-03"})
    );
    assert_eq!(hotels.len(), 4);
}

#[test]
fn a_rerun_imports_only_files_not_done() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    write(dir.path(), "day=1/orders.jsonl", &orders(0, 50));
    let topic = topic();

    let first = run(folder, &topic, &ImportOptions::default());
    assert_eq!(first.rows(), 50);
    let again = run(folder, &topic, &ImportOptions::default());
    assert_eq!(again.rows(), 0);
    assert_eq!(again.already_done, ["day=1/orders.jsonl"]);
    assert!(again.imported.is_empty());

    write(dir.path(), "day=2/orders.jsonl", &orders(50, 80));
    write(dir.path(), "day=2/hotels.parquet", &parquet_file(0..7));
    let third = run(folder, &topic, &ImportOptions::default());
    let paths: Vec<&str> = third.imported.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["day=2/hotels.parquet", "day=2/orders.jsonl"]);
    assert_eq!(third.rows(), 37);

    // `by_file` fails on any repeated row.
    let files = by_file(&topic);
    let counts: Vec<(&str, usize)> = files.iter().map(|(f, r)| (f.as_str(), r.len())).collect();
    assert_eq!(
        counts,
        [
            ("day=1/orders.jsonl", 50),
            ("day=2/hotels.parquet", 7),
            ("day=2/orders.jsonl", 30)
        ]
    );
    let progress: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(progress_key(&topic))).unwrap())
            .unwrap();
    assert_eq!(progress["files"]["day=2/orders.jsonl"]["rows"], 30);
    assert_eq!(progress["files"]["day=2/orders.jsonl"]["done"], true);
}

#[test]
fn a_crash_mid_file_resumes_at_the_first_unrecorded_row() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    write(dir.path(), "a.jsonl", &orders(0, 10));
    write(dir.path(), "b.avro", &expedia_avro(0..2500));
    write(dir.path(), "c.jsonl", &orders(10, 20));
    let topic = topic();
    let options = ImportOptions {
        chunk_rows: 1000,
        ..ImportOptions::default()
    };

    // The process dies right after b.avro's first chunk is acknowledged and
    // recorded: a panic out of the progress callback stops the import there.
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        import(
            &broker(),
            folder,
            &AzureCredentials::default(),
            &topic,
            &options,
            |progress| {
                if progress.file == "b.avro" && progress.rows_done == 1000 {
                    panic!("simulated crash");
                }
            },
        )
    }));
    assert!(crashed.is_err());
    let counts = |files: &BTreeMap<String, BTreeMap<u64, Imported>>| {
        files
            .iter()
            .map(|(f, r)| (f.clone(), r.len()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(&by_file(&topic)),
        [("a.jsonl".to_owned(), 10), ("b.avro".to_owned(), 1000)]
    );
    let progress: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(progress_key(&topic))).unwrap())
            .unwrap();
    assert_eq!(progress["files"]["b.avro"]["rows"], 1000);
    assert_eq!(progress["files"]["b.avro"]["done"], false);

    // The resumed run keeps no checked rows: it skips to row 1000 in a
    // second read of the file.
    let report = run(
        folder,
        &topic,
        &ImportOptions {
            keep_budget: 0,
            ..options.clone()
        },
    );
    assert_eq!(report.already_done, ["a.jsonl"]);
    let resumed: Vec<(&str, u64, u64)> = report
        .imported
        .iter()
        .map(|f| (f.path.as_str(), f.resumed_at, f.rows))
        .collect();
    assert_eq!(resumed, [("b.avro", 1000, 1500), ("c.jsonl", 0, 10)]);

    // Exactly once: every row of every file, none twice (`by_file` checks).
    let files = by_file(&topic);
    assert_eq!(
        counts(&files),
        [
            ("a.jsonl".to_owned(), 10),
            ("b.avro".to_owned(), 2500),
            ("c.jsonl".to_owned(), 10)
        ]
    );
    assert_eq!(
        values(&files["b.avro"]),
        (0..2500).map(expedia_json).collect::<Vec<_>>()
    );
}

#[test]
fn corrupt_files_are_named_and_the_others_go_in() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    write(dir.path(), "1-good.jsonl", &orders(0, 5));
    write(
        dir.path(),
        "2-garbage.avro",
        b"\x00\x01 this was never an avro file",
    );
    let mut truncated = parquet_file(0..500);
    truncated.truncate(truncated.len() * 2 / 3);
    write(dir.path(), "3-truncated.parquet", &truncated);
    let mut bad_line = orders(0, 2);
    bad_line.extend_from_slice(b"{\"order\": \"o-2\", oops\n");
    bad_line.extend(orders(3, 4));
    write(dir.path(), "4-bad-line.jsonl", &bad_line);
    let mut cut_avro = expedia_avro(0..3000);
    cut_avro.truncate(cut_avro.len() - 100);
    write(dir.path(), "5-cut.avro", &cut_avro);
    write(dir.path(), "6-good.parquet", &parquet_file(0..3));
    let topic = topic();

    let report = run(folder, &topic, &ImportOptions::default());

    assert!(!report.succeeded());
    let imported: Vec<&str> = report.imported.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(imported, ["1-good.jsonl", "6-good.parquet"]);
    let failed: Vec<&str> = report.failed.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        failed,
        [
            "2-garbage.avro",
            "3-truncated.parquet",
            "4-bad-line.jsonl",
            "5-cut.avro"
        ]
    );
    let reasons: Vec<String> = report.failed.iter().map(|f| f.to_string()).collect();
    assert!(reasons[0].starts_with("2-garbage.avro: avro: not a readable avro file"));
    assert!(reasons[1].starts_with("3-truncated.parquet: parquet: not a readable parquet file"));
    assert!(
        reasons[2].starts_with("4-bad-line.jsonl: jsonl: line 3: "),
        "{}",
        reasons[2]
    );
    assert!(
        reasons[3].starts_with("5-cut.avro: avro: record "),
        "{}",
        reasons[3]
    );

    // A bad file produces nothing, not even the rows before the problem.
    let files = by_file(&topic);
    let counts: Vec<(&str, usize)> = files.iter().map(|(f, r)| (f.as_str(), r.len())).collect();
    assert_eq!(counts, [("1-good.jsonl", 5), ("6-good.parquet", 3)]);

    // A re-run tries the bad files again and nothing else.
    let again = run(folder, &topic, &ImportOptions::default());
    assert_eq!(again.already_done, ["1-good.jsonl", "6-good.parquet"]);
    assert_eq!(again.failed.len(), 4);
    assert_eq!(again.rows(), 0);
}

/// A linked list, written by apache-avro with `lists` records of `nodes`
/// nodes each (a sane depth), and, when `deep` is set, one more record of
/// 100,000 nodes in a block written by hand (apache-avro's encoder recurses
/// too).
fn linked_lists(lists: usize, nodes: usize, deep: bool) -> Vec<u8> {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"Node","fields":[
            {"name":"value","type":"int"},{"name":"next","type":["null","Node"]}]}"#,
    )
    .unwrap();
    let mut writer = Writer::new(&schema, Vec::new());
    for list in 0..lists {
        let mut value = AvroValue::Union(0, Box::new(AvroValue::Null));
        for node in (0..nodes).rev() {
            let record = AvroValue::Record(vec![
                ("value".into(), AvroValue::Int((list * nodes + node) as i32)),
                ("next".into(), value),
            ]);
            value = AvroValue::Union(1, Box::new(record));
        }
        let AvroValue::Union(1, first) = value else {
            unreachable!("a list of at least one node")
        };
        writer.append(*first).unwrap();
        writer.flush().unwrap();
    }
    let mut file = writer.into_inner().unwrap();
    if deep {
        let sync = file[file.len() - 16..].to_vec();
        let nodes = 100_000;
        let mut datum = Vec::new();
        for node in 1..=nodes {
            datum.extend([0x02, if node < nodes { 0x02 } else { 0x00 }]);
        }
        file.push(0x02); // one record, then the block's size
        let mut size = (datum.len() as u64) << 1;
        while size > 0x7f {
            file.push((size as u8 & 0x7f) | 0x80);
            size >>= 7;
        }
        file.push(size as u8);
        file.extend(datum);
        file.extend(sync);
    }
    file
}

/// Before the depth check, apache-avro's reader decoded the deep record
/// recursively and the stack overflow aborted the whole import: no file
/// after it was imported, and nothing was reported.
#[test]
fn a_record_nested_past_the_depth_limit_fails_its_file_by_name_and_the_others_go_in() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    write(dir.path(), "1-good.jsonl", &orders(0, 3));
    write(dir.path(), "2-deep.avro", &linked_lists(2, 3, true));
    write(dir.path(), "3-lists.avro", &linked_lists(2, 40, false));
    let topic = topic();

    let report = run(folder, &topic, &ImportOptions::default());

    let imported: Vec<&str> = report.imported.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(imported, ["1-good.jsonl", "3-lists.avro"]);
    let failed: Vec<String> = report.failed.iter().map(|f| f.to_string()).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]
            .starts_with("2-deep.avro: avro: record 3: the value nests more than 128 levels deep"),
        "{}",
        failed[0]
    );
    // Lists of 40 nodes (80 levels) are data like any other.
    let files = by_file(&topic);
    let lists = values(&files["3-lists.avro"]);
    assert_eq!(lists.len(), 2);
    let mut node = &lists[1];
    for value in 40..80 {
        assert_eq!(node["value"], value);
        node = &node["next"];
    }
    assert_eq!(*node, Value::Null);
    assert!(!files.contains_key("2-deep.avro"));
}

#[test]
fn a_file_changed_after_its_import_is_reported_not_imported_again() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    write(dir.path(), "orders.jsonl", &orders(0, 4));
    let topic = topic();
    run(folder, &topic, &ImportOptions::default());

    write(dir.path(), "orders.jsonl", &orders(0, 6));
    let report = run(folder, &topic, &ImportOptions::default());
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0]
            .reason
            .contains("changed since it was imported"),
        "{}",
        report.failed[0]
    );
    assert_eq!(by_file(&topic)["orders.jsonl"].len(), 4);
}

#[test]
fn a_format_given_applies_to_every_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "export-2024-01.txt", &orders(0, 3));
    write(dir.path(), "export-2024-02", &orders(3, 5));
    let topic = topic();
    let options = ImportOptions {
        format: Some(Format::JsonLines),
        key_field: Some("order".into()),
        ..ImportOptions::default()
    };
    let report = run(dir.path().to_str().unwrap(), &topic, &options);
    assert_eq!(report.rows(), 5);
    let files = by_file(&topic);
    let keys: Vec<String> = files["export-2024-02"]
        .values()
        .map(|r| r.key.clone().unwrap())
        .collect();
    assert_eq!(keys, ["o-3", "o-4"], "a text key is used as is, unquoted");
}

#[test]
fn imports_from_azurite_and_resumes_there() {
    let url = azurite_url("import", "landing/expedia");
    let credentials = azurite::credentials();
    let storage = Storage::open(&url, &credentials).unwrap();
    let staging = tempfile::tempdir().unwrap();
    let upload = |key: &str, bytes: &[u8]| {
        let local = staging.path().join(key.replace('/', "_"));
        std::fs::write(&local, bytes).unwrap();
        storage.upload(&local, key).unwrap();
    };
    upload("part-0.avro", &expedia_avro(0..30));
    upload("part-1.avro", &expedia_avro(30..60));
    upload("_SUCCESS", b"");
    upload("extra/hotels.parquet", &parquet_file(0..4));
    let topic = topic();
    let options = ImportOptions {
        key_field: Some("id".into()),
        ..ImportOptions::default()
    };

    let report = import(&broker(), &url, &credentials, &topic, &options, |_| {}).unwrap();
    let imported: Vec<(&str, u64)> = report
        .imported
        .iter()
        .map(|f| (f.path.as_str(), f.rows))
        .collect();
    assert_eq!(
        imported,
        [
            ("extra/hotels.parquet", 4),
            ("part-0.avro", 30),
            ("part-1.avro", 30)
        ]
    );
    assert!(report.succeeded() && report.skipped.is_empty());

    // The progress file is in the container, next to the data.
    let progress: Value = serde_json::from_slice(&storage.get(&progress_key(&topic)).unwrap())
        .expect("progress file in Azure storage");
    assert_eq!(progress["files"]["part-1.avro"]["done"], true);

    upload("part-2.avro", &expedia_avro(60..70));
    let again = import(&broker(), &url, &credentials, &topic, &options, |_| {}).unwrap();
    assert_eq!(again.already_done.len(), 3);
    assert_eq!(again.rows(), 10);

    let files = by_file(&topic);
    let avro_rows: Vec<Value> = ["part-0.avro", "part-1.avro", "part-2.avro"]
        .iter()
        .flat_map(|f| values(&files[*f]))
        .collect();
    assert_eq!(avro_rows, (0..70).map(expedia_json).collect::<Vec<_>>());
}

#[test]
fn a_file_rewritten_with_the_same_size_is_noticed_too() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    let first = jsonl((0..4).map(|i| json!({"id": i, "v": "a"})));
    write(dir.path(), "same.jsonl", &first);
    let topic = topic();
    run(folder, &topic, &ImportOptions::default());
    // Same length, other content, a later modification time.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = jsonl((0..4).map(|i| json!({"id": i, "v": "b"})));
    assert_eq!(first.len(), second.len());
    write(dir.path(), "same.jsonl", &second);
    let report = run(folder, &topic, &ImportOptions::default());
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(
        report.failed[0]
            .reason
            .contains("changed since it was imported")
    );
    assert_eq!(by_file(&topic)["same.jsonl"].len(), 4);
}

#[test]
fn a_second_import_of_the_same_folder_and_topic_is_refused_while_the_first_runs() {
    use sluice_host::import::{ImportError, ImportLease, lease_key};
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    write(dir.path(), "orders.jsonl", &orders(0, 3));
    let topic = topic();
    let options = ImportOptions {
        lease: Duration::from_secs(1),
        ..ImportOptions::default()
    };
    // An import running now holds a lease far longer than the test and
    // renews it; the other, with its own short lease, gives up watching it
    // after a second and a third.
    let running = ImportLease::take(
        folder,
        &AzureCredentials::default(),
        &topic,
        Duration::from_secs(600),
    )
    .expect("the lease is free");
    let refused = import(
        &broker(),
        folder,
        &AzureCredentials::default(),
        &topic,
        &options,
        |_| {},
    );
    let Err(ImportError::Busy { owner, .. }) = refused else {
        panic!("expected the import to be refused: {refused:?}");
    };
    let lease: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(lease_key(&topic))).unwrap())
            .unwrap();
    assert_eq!(lease["owner"], Value::from(owner));
    assert!(read_all(&broker(), &topic).is_empty(), "nothing produced");
    assert!(running.release().unwrap(), "released by its holder");

    // Taken at once: with the lease still 10 minutes from expiring, only
    // its release lets this import in (else it is refused as busy).
    let report = run(folder, &topic, &options);
    assert_eq!(report.rows(), 3);
    let lease: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(lease_key(&topic))).unwrap())
            .unwrap();
    assert_eq!(lease["owner"], Value::Null, "released when the import ends");
}

/// Another import takes the lease over while this one runs (this one
/// stalled past its lease, say) and records progress of its own: this one
/// stops, and what the other recorded stays.
#[test]
fn an_import_whose_lease_is_taken_over_stops_and_leaves_the_others_progress() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "orders.jsonl", &orders(0, 20_000));
    // Replaced whole, as a store's put replaces an object.
    let replace = |key: &str, bytes: &[u8]| {
        let staged = dir.path().join("_staged");
        std::fs::write(&staged, bytes).unwrap();
        std::fs::rename(&staged, dir.path().join(key)).unwrap();
    };
    stops_when_taken_over(
        dir.path().to_str().unwrap(),
        &AzureCredentials::default(),
        &replace,
    );
}

#[test]
fn an_import_whose_lease_is_taken_over_on_azure_stops_and_leaves_the_others_progress() {
    let url = azurite_url("import-taken", "landing");
    let credentials = azurite::credentials();
    let storage = Storage::open(&url, &credentials).unwrap();
    let staging = tempfile::tempdir().unwrap();
    let put = |key: &str, bytes: &[u8]| {
        let local = staging.path().join("staged");
        std::fs::write(&local, bytes).unwrap();
        storage.upload(&local, key).unwrap();
    };
    put("orders.jsonl", &orders(0, 20_000));
    stops_when_taken_over(&url, &credentials, &put);
}

fn stops_when_taken_over(
    url: &str,
    credentials: &AzureCredentials,
    overwrite: &dyn Fn(&str, &[u8]),
) {
    use sluice_host::import::{ImportError, lease_key};
    let topic = topic();
    let options = ImportOptions {
        chunk_rows: 100,
        lease: Duration::from_secs(1),
        ..ImportOptions::default()
    };
    let theirs =
        json!({"topic": topic, "files": {"orders.jsonl": {"size": 1, "rows": 7, "done": false}}})
            .to_string();
    let mut taken_over = false;
    let outcome = import(&broker(), url, credentials, &topic, &options, |progress| {
        if !taken_over && progress.rows_done >= 200 {
            taken_over = true;
            let until = SystemTime::now() + Duration::from_secs(60);
            let until_ms = until.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
            let lease = json!({"owner": "the-other-import", "expires_at_ms": until_ms});
            overwrite(&lease_key(&topic), lease.to_string().as_bytes());
            overwrite(&progress_key(&topic), theirs.as_bytes());
        }
    });
    assert!(taken_over, "the import got past its second chunk");
    match outcome {
        Err(ImportError::LeaseLost { reason, .. }) => {
            assert!(reason.contains("the-other-import"), "{reason}")
        }
        Err(ImportError::ProgressChanged { .. }) => {}
        other => panic!("expected the import to stop: {other:?}"),
    }
    let storage = Storage::open(url, credentials).unwrap();
    assert_eq!(
        storage.get(&progress_key(&topic)).unwrap(),
        theirs.as_bytes(),
        "the other import's progress is not overwritten"
    );
    let lease: Value = serde_json::from_slice(&storage.get(&lease_key(&topic)).unwrap()).unwrap();
    assert_eq!(
        lease["owner"], "the-other-import",
        "its lease is left alone"
    );
    let produced = read_all(&broker(), &topic).len();
    assert!(produced < 20_000, "stopped early: {produced} rows produced");
}
