//! End to end against the broker `scripts/services.sh up` started, every
//! ratio from one run: Sluice's enrichment beside a consume -> produce pipe
//! with no logic (the host's `GroupConsumer` and `Producer`), its export
//! beside a raw consume of the same topic (`BoundedReader`), its import
//! beside a raw produce of the same rows (`Producer::send_all`), and each
//! beside a Python worker doing the same job with confluent-kafka. Each
//! variant runs in a process of its own, reads the same topic or files and
//! writes to a topic of its own; every one must account for every record.
//!
//! Workers in a consumer group spend seconds joining it before the first
//! record (tansu completes a join after about half the session timeout),
//! so their clock starts once their first step is done and counts the
//! records after it; exports and imports are timed whole.
//!
//! `cargo bench -p sluice-tests --bench end_to_end [-- RECORDS]` (100,000
//! records; 1,000 under `cargo test --all-targets`; needs
//! `scripts/build-guests.sh` first).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_host::enrich::{Enricher, PipelineDefinition, WorkerOptions, run_worker};
use sluice_host::export::{ExportOptions, export_topic};
use sluice_host::import::{FILE_HEADER, ImportOptions, ROW_HEADER, import};
use sluice_host::kafka::{
    BoundedReader, CommitMode, GroupConsumer, GroupStart, KafkaConfig, ProduceRecord, Producer,
    ensure_topic,
};
use sluice_host::record::Header;
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_tests::bench::{self, Child, Measured, Stopwatch, Table, run_python, run_variant};
use sluice_tests::{broker, fresh_topic};

const PARTITIONS: i32 = 3;
/// Records per poll and per guest call: a pipeline's default `batch_size`.
const STEP: usize = 500;
/// Rows per acknowledged chunk: `sluice import`'s default `--chunk-rows`.
const CHUNK: usize = 1_000;
/// JSON lines files the import reads.
const FILES: usize = 4;

fn main() {
    if let Some(child) = Child::from_args() {
        return variant(&child);
    }
    let count = bench::count(100_000, 1_000);
    let config = broker();
    let dir = tempfile::tempdir().expect("temp folder");
    let path = |name: &str| dir.path().join(name).to_str().expect("UTF-8").to_owned();

    eprintln!("producing {count} bookings to the input topic...");
    let values = bench::expedia_values(count, 13);
    let input = new_topic(&config, "e2e-in");
    let records: Vec<ProduceRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| ProduceRecord {
            topic: input.clone(),
            partition: None,
            key: Some(i.to_string().into_bytes()),
            value: Some(v.clone()),
            headers: Vec::new(),
            timestamp: None,
        })
        .collect();
    let producer = Producer::new(&config).expect("producer");
    for chunk in records.chunks(10_000) {
        producer.send_all(chunk).expect("input produced");
    }
    drop((producer, records));
    std::fs::create_dir_all(path("jsonl")).expect("folder");
    for (part, chunk) in values.chunks(count.div_ceil(FILES)).enumerate() {
        let mut lines = Vec::new();
        for value in chunk {
            lines.extend_from_slice(value);
            lines.push(b'\n');
        }
        std::fs::write(path(&format!("jsonl/part-{part:05}.jsonl")), lines).expect("write");
    }
    drop(values);

    let common = |output: &str| {
        vec![
            ("brokers", config.bootstrap_servers.clone()),
            ("input", input.clone()),
            ("output", output.to_owned()),
            ("group", fresh_topic("e2e-group")),
            ("count", count.to_string()),
        ]
    };
    // Every record reached the variant's output topic.
    let delivered = |topic: &str| -> u64 {
        let reader = BoundedReader::from_earliest(&config, topic).expect("output topic");
        reader
            .ranges()
            .iter()
            .map(|r| (r.end - r.start) as u64)
            .sum()
    };
    let worker = |name: &str, python: Option<&str>| {
        let output = new_topic(&config, "e2e-out");
        let mut args = common(&output);
        args.push(("dead_letter", new_topic(&config, "e2e-dlq")));
        let measured = match python {
            Some(logic) => {
                args.push(("logic", logic.to_owned()));
                run_python("e2e_worker.py", &args)
            }
            None => Some(run_variant(name, &args)),
        };
        if measured.is_some() {
            assert_eq!(
                delivered(&output),
                count as u64,
                "{name}: every record produced"
            );
        }
        measured
    };

    const PIPE: &str = "pipe, no logic (GroupConsumer -> Producer)";
    const PIPE_HEADERS: &str = "pipe, no logic, + Sluice's two headers";
    const PYTHON_PIPE: &str = "python pipe, no logic";
    const PYTHON_WORKER: &str = "python worker (json + rules)";
    const ENRICH: &str = "sluice enrich (run_worker, stay-category)";
    let mut enrich = Table::new(format!(
        "enrichment end to end: {count} bookings, one worker, clock from its first step done"
    ));
    let pipe = worker("pipe", None);
    let pipe_headers = worker("pipe-headers", None);
    let sluice = worker("enrich", None);
    let python_pipe = worker("python pipe", Some("0"));
    let python = worker("python worker", Some("1"));
    enrich.row(PIPE, pipe.as_ref(), None);
    enrich.row(PIPE_HEADERS, pipe_headers.as_ref(), Some(PIPE));
    enrich.row(PYTHON_PIPE, python_pipe.as_ref(), None);
    enrich.row(PYTHON_WORKER, python.as_ref(), Some(PYTHON_PIPE));
    enrich.row(ENRICH, sluice.as_ref(), Some(PIPE));
    enrich.target_ratio(
        "sluice enrich vs pipe",
        enrich.ratio(ENRICH, PIPE),
        0.9,
        false,
    );
    // tansu charges for every header it stores: against a pipe that adds
    // the same two, the ratio is Sluice's own cost.
    enrich.target_ratio(
        "sluice enrich vs the pipe with the same headers",
        enrich.ratio(ENRICH, PIPE_HEADERS),
        0.9,
        false,
    );
    enrich.target_ratio(
        "sluice enrich vs python worker",
        enrich.ratio(ENRICH, PYTHON_WORKER),
        1.5,
        false,
    );
    // The broker bounds the wall-clock figures; the CPU a worker spends
    // per record is its own (a producer spinning on in-flight batches once
    // cost 5.7x more of it, unseen in the wall-clock ratios).
    let per_cpu_second = |m: &Option<Measured>| {
        m.as_ref()
            .filter(|m| m.cpu_seconds > 0.0)
            .map(|m| m.records as f64 / m.cpu_seconds)
    };
    enrich.target_ratio(
        "sluice enrich vs python worker, records per CPU-second",
        per_cpu_second(&sluice)
            .zip(per_cpu_second(&python))
            .map(|(ours, theirs)| ours / theirs),
        1.5,
        false,
    );

    const CONSUME: &str = "raw consume (BoundedReader)";
    const PYTHON_EXPORT: &str = "python exporter (confluent-kafka + pyarrow)";
    const EXPORT: &str = "sluice export (export_topic)";
    let mut export = Table::new(format!(
        "export end to end: {count} bookings -> zstd Parquet in a local folder"
    ));
    let consume = run_variant("consume", &common("-"));
    let exported = run_variant(
        "export",
        &[common("-"), vec![("out", path("sluice-out"))]].concat(),
    );
    let python_export = run_python(
        "e2e_export.py",
        &[common("-"), vec![("out", path("python-out"))]].concat(),
    );
    for (who, measured) in [
        ("export", Some(&exported)),
        ("python", python_export.as_ref()),
    ] {
        if let Some(m) = measured {
            assert_eq!(m.outputs, count as u64, "{who}: every record in a file");
        }
    }
    export.row(CONSUME, Some(&consume), None);
    export.row(PYTHON_EXPORT, python_export.as_ref(), Some(CONSUME));
    export.row(EXPORT, Some(&exported), Some(CONSUME));
    export.target_ratio(
        "sluice export vs raw consume",
        export.ratio(EXPORT, CONSUME),
        0.9,
        false,
    );
    export.target_ratio(
        "sluice export vs python exporter",
        export.ratio(EXPORT, PYTHON_EXPORT),
        1.0,
        false,
    );

    const PRODUCE: &str = "raw produce (Producer::send_all)";
    const PRODUCE_HEADERS: &str = "raw produce + the import's two headers";
    const PYTHON_IMPORT: &str = "python importer (json + confluent-kafka)";
    const IMPORT: &str = "sluice import";
    let mut import_table = Table::new(format!(
        "import end to end: {count} rows of JSON lines in {FILES} files, chunks of {CHUNK} acknowledged"
    ));
    let importer = |variant: &str, python: bool| {
        let output = new_topic(&config, "e2e-import");
        let args = [common(&output), vec![("folder", path("jsonl"))]].concat();
        let measured = if python {
            run_python("e2e_import.py", &args)
        } else {
            Some(run_variant(variant, &args))
        };
        if measured.is_some() {
            assert_eq!(
                delivered(&output),
                count as u64,
                "{variant}: every row produced"
            );
        }
        measured
    };
    let produce = importer("produce", false);
    let produce_headers = importer("produce-headers", false);
    let imported = importer("import", false);
    let python_import = importer("python", true);
    import_table.row(PRODUCE, produce.as_ref(), None);
    import_table.row(PRODUCE_HEADERS, produce_headers.as_ref(), Some(PRODUCE));
    import_table.row(PYTHON_IMPORT, python_import.as_ref(), Some(PRODUCE));
    import_table.row(IMPORT, imported.as_ref(), Some(PRODUCE));
    import_table.target_ratio(
        "sluice import vs raw produce",
        import_table.ratio(IMPORT, PRODUCE),
        0.8,
        false,
    );
    import_table.target_ratio(
        "sluice import vs raw produce with the same headers",
        import_table.ratio(IMPORT, PRODUCE_HEADERS),
        0.8,
        false,
    );
    import_table.target_ratio(
        "sluice import vs python importer",
        import_table.ratio(IMPORT, PYTHON_IMPORT),
        1.0,
        false,
    );

    for table in [&enrich, &export, &import_table] {
        table.print();
    }
}

fn new_topic(config: &KafkaConfig, prefix: &str) -> String {
    let topic = fresh_topic(prefix);
    ensure_topic(config, &topic, PARTITIONS).expect("create topic");
    topic
}

fn variant(child: &Child) {
    let config = KafkaConfig::new(child.arg("brokers"));
    let count = child.number("count") as u64;
    let mut watch = Stopwatch::default();
    let (mut records, mut bytes, mut outputs) = (count, 0u64, 0u64);
    match child.variant.as_str() {
        "pipe" | "pipe-headers" => {
            // What Sluice's enrichment adds to every output (its stamp and
            // a traceparent, of the same sizes), to tell what the broker
            // charges for headers from what Sluice costs.
            let headers = if child.variant == "pipe-headers" {
                vec![
                    text_header("sluice.transform", "stay-category@0123456789ab"),
                    text_header(
                        "traceparent",
                        "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
                    ),
                ]
            } else {
                Vec::new()
            };
            let producer = Producer::new(&config).expect("producer");
            let inputs = [child.arg("input").to_owned()];
            let mut consumer = GroupConsumer::subscribe(
                &config,
                child.arg("group"),
                &inputs,
                GroupStart::Earliest,
            )
            .expect("subscribe");
            let mut clock = FirstStep::default();
            let mut read = 0u64;
            while read < count {
                let polled = consumer.poll(STEP, Duration::from_millis(200));
                let produce: Vec<ProduceRecord> = polled
                    .records
                    .iter()
                    .map(|r| ProduceRecord {
                        topic: child.arg("output").to_owned(),
                        partition: None,
                        key: r.key.clone(),
                        value: r.value.clone(),
                        headers: [r.headers.clone(), headers.clone()].concat(),
                        timestamp: r.timestamp,
                    })
                    .collect();
                producer.send_all(&produce).expect("produce");
                let done: Vec<_> = polled.records.iter().map(|r| r.locator()).collect();
                consumer.finished(&done);
                if let Err(error) = consumer.commit(CommitMode::Async) {
                    eprintln!("commit failed, retried by the next one: {error}");
                }
                read += polled.records.len() as u64;
                bytes += value_bytes(&polled.records);
                clock.step(read, bytes);
            }
            (records, bytes) = clock.finish(&mut watch, read, bytes);
            outputs = read;
        }
        "enrich" => {
            let definition = PipelineDefinition::from_value(&json!({
                "name": "bench",
                "group_id": child.arg("group"),
                "inputs": [child.arg("input")],
                "outputs": [child.arg("output")],
                "transform": "stay-category",
                "dead_letter": child.arg("dead_letter"),
                "batch_size": STEP,
            }))
            .expect("a valid definition");
            let transform = sluice_tests::transform("stay-category");
            let mut enricher = Enricher::new(definition, &transform).expect("enricher");
            let stop = AtomicBool::new(false);
            let mut clock = FirstStep::default();
            let stats = run_worker(
                &config,
                &mut enricher,
                WorkerOptions::default(),
                &stop,
                |_, total| {
                    // The worker does not say how many bytes it read: the
                    // input's average record size stands in for it.
                    clock.step(total.read, 0);
                    if total.read >= count {
                        stop.store(true, Ordering::SeqCst);
                    }
                },
            )
            .expect("worker ran");
            (records, _) = clock.finish(&mut watch, stats.read, 0);
            bytes = records * average_value_bytes(&config, child.arg("input"));
            outputs = stats.produced;
        }
        "consume" => {
            watch.time(|| {
                let mut reader =
                    BoundedReader::from_earliest(&config, child.arg("input")).expect("open");
                while let Some(batch) = reader.next_batch(5_000).expect("read") {
                    outputs += batch.len() as u64;
                    bytes += value_bytes(&batch);
                }
            });
        }
        "export" => {
            let plan = sluice_tests::plan(child.arg("input"), child.arg("group"), json!({}));
            let storage =
                Storage::open(child.arg("out"), &AzureCredentials::default()).expect("storage");
            let report = watch.time(|| {
                export_topic(
                    &config,
                    &plan,
                    &storage,
                    &ExportOptions::new("bench"),
                    None,
                    |_| {},
                )
                .expect("export ran")
            });
            outputs = report.files.iter().map(|f| f.rows).sum();
            bytes = count * average_value_bytes(&config, child.arg("input"));
        }
        "produce" | "produce-headers" => {
            let rows = jsonl_rows(&child.path("folder"));
            let with_headers = child.variant == "produce-headers";
            let records_to_send: Vec<ProduceRecord> = rows
                .iter()
                .enumerate()
                .map(|(i, (key, value))| ProduceRecord {
                    topic: child.arg("output").to_owned(),
                    partition: None,
                    key: Some(key.clone()),
                    value: Some(value.clone()),
                    // The file and row headers every imported record has.
                    headers: if with_headers {
                        vec![
                            text_header(FILE_HEADER, "part-00000.jsonl"),
                            text_header(ROW_HEADER, &i.to_string()),
                        ]
                    } else {
                        Vec::new()
                    },
                    timestamp: None,
                })
                .collect();
            bytes = folder_bytes(&child.path("folder"));
            let producer = Producer::new(&config).expect("producer");
            watch.time(|| {
                for chunk in records_to_send.chunks(CHUNK) {
                    producer.send_all(chunk).expect("produce");
                }
            });
            records = rows.len() as u64;
            outputs = records;
        }
        "import" => {
            let options = ImportOptions {
                key_field: Some("id".into()),
                chunk_rows: CHUNK,
                ..ImportOptions::default()
            };
            bytes = folder_bytes(&child.path("folder"));
            let report = watch.time(|| {
                import(
                    &config,
                    child.arg("folder"),
                    &AzureCredentials::default(),
                    child.arg("output"),
                    &options,
                    |_| {},
                )
                .expect("import ran")
            });
            assert!(report.succeeded(), "{:?}", report.failed);
            records = report.rows();
            outputs = records;
        }
        other => panic!("no variant {other}"),
    }
    child.report(records, bytes, outputs, &watch);
}

/// A worker's clock: it starts when the first step that read anything is
/// done (the group joined, the partitions assigned) and counts what was
/// read after that.
#[derive(Default)]
struct FirstStep {
    started: Option<(Instant, f64, u64, u64)>,
}

impl FirstStep {
    fn step(&mut self, read: u64, bytes: u64) {
        if self.started.is_none() && read > 0 {
            self.started = Some((Instant::now(), bench::cpu_seconds(), read, bytes));
        }
    }

    /// Sets the stopwatch to the time since the first step; returns the
    /// records and bytes read since.
    fn finish(&self, watch: &mut Stopwatch, read: u64, bytes: u64) -> (u64, u64) {
        let (at, cpu, read_then, bytes_then) =
            self.started
                .unwrap_or((Instant::now(), bench::cpu_seconds(), 0, 0));
        watch.wall = at.elapsed();
        watch.cpu = bench::cpu_seconds() - cpu;
        (read - read_then, bytes - bytes_then)
    }
}

fn text_header(key: &str, value: &str) -> Header {
    Header {
        key: key.to_owned(),
        value: Some(value.as_bytes().to_vec()),
    }
}

fn value_bytes(records: &[sluice_host::record::KafkaRecord]) -> u64 {
    records
        .iter()
        .map(|r| r.value.as_ref().map_or(0, Vec::len) as u64)
        .sum()
}

/// The input topic's average value size, from its first records.
fn average_value_bytes(config: &KafkaConfig, topic: &str) -> u64 {
    let mut reader = BoundedReader::from_earliest(config, topic).expect("open");
    let batch = reader.next_batch(1_000).expect("read").unwrap_or_default();
    value_bytes(&batch) / (batch.len() as u64).max(1)
}

/// The folder's JSON lines files, in path order (not the progress folder
/// an import keeps beside them).
fn jsonl_files(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(folder)
        .expect("folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    paths.sort();
    paths
}

/// The key (`id`) and line of every row of the folder's JSON lines files.
fn jsonl_rows(folder: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rows = Vec::new();
    for path in jsonl_files(folder) {
        let text = std::fs::read(&path).expect("read file");
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let value: serde_json::Value = serde_json::from_slice(line).expect("JSON line");
            rows.push((value["id"].to_string().into_bytes(), line.to_vec()));
        }
    }
    rows
}

fn folder_bytes(folder: &Path) -> u64 {
    jsonl_files(folder)
        .iter()
        .map(|p| std::fs::metadata(p).expect("metadata").len())
        .sum()
}
