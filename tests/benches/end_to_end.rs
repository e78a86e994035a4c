//! End to end against the broker `scripts/services.sh up` started, every
//! ratio from one run. Each variant runs in a process of its own, reads the
//! same topic or files and writes to a topic of its own; every one must
//! account for every record.
//!
//! The enrichment is measured whole, from outside: `sluice enrich` (the
//! release binary, stay-category in WebAssembly) beside a bare rust-rdkafka
//! consume -> produce pipe (`examples/rdkafka_pipe.rs`) with and without the
//! two headers Sluice writes, and the Python workers Sluice replaces
//! (confluent-kafka; json and the stay rules, with and without the headers;
//! a bare pipe). For each process: the wall time from its start to the last
//! record in its output topic (the topic watched every 100 ms), its CPU
//! time over the whole run, start-up and group join included (`wait4`'s
//! rusage once it ended; `sluice enrich` is stopped with SIGTERM once its
//! output is complete), and how long after its first output it ran at full
//! speed (the first one-second window at 80% of its rate between 25% and
//! 90% of the records). The broker caps everybody's wall-clock rate (tansu
//! reads ~17k records/s from sqlite), so the targets are on CPU per record.
//! Exports and imports are timed in the process (`BoundedReader`,
//! `Producer::send_all` and Python beside them).
//!
//! `cargo build --release -p sluice && cargo build --release -p sluice-tests
//! --example rdkafka_pipe && cargo bench -p sluice-tests --bench end_to_end
//! [-- RECORDS]` (100,000 records, or `$SLUICE_E2E_RECORDS`; 1,000 under
//! `cargo test --all-targets`; needs `scripts/build-guests.sh` first).
//! `SLUICE_BIN=path` measures another `sluice` binary;
//! `SLUICE_E2E_ONLY=enrich` runs the enrichment alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use sluice_host::export::{ExportOptions, export_topic};
use sluice_host::import::{FILE_HEADER, ImportOptions, ROW_HEADER, import};
use sluice_host::kafka::{BoundedReader, KafkaConfig, ProduceRecord, Producer, ensure_topic};
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
    let count = std::env::var("SLUICE_E2E_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| bench::count(100_000, 1_000));
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
    let enrich = enrichment(&config, &input, count, dir.path());
    if std::env::var("SLUICE_E2E_ONLY").as_deref() == Ok("enrich") {
        return enrich.print();
    }

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
                delivered_to(&config, &output),
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

const RDKAFKA_PIPE: &str = "rdkafka pipe, no logic";
const RDKAFKA_HEADERS: &str = "rdkafka pipe + Sluice's two headers";
const PYTHON_PIPE: &str = "python pipe, no logic";
const PYTHON_WORKER: &str = "python worker (json + rules)";
const PYTHON_HEADERS: &str = "python worker + Sluice's two headers";
const ENRICH: &str = "sluice enrich (stay-category, WebAssembly)";

/// Each enrichment worker as a process of its own over the `count` records
/// of `input`, measured from outside; the table with its targets.
fn enrichment(config: &KafkaConfig, input: &str, count: usize, dir: &Path) -> Table {
    let count = count as u64;
    let watch = Watch::new(config);
    let release = std::env::current_exe()
        .expect("bench binary path")
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("the bench binary in <target>/<profile>/deps");
    let sluice = std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| release.join("sluice"));
    let pipe = release.join("examples/rdkafka_pipe");
    let mut runs: Vec<(&str, Option<Run>)> = Vec::new();
    let mut worker = |name: &'static str, how: Worker| {
        let output = new_topic(config, "e2e-out");
        let dead_letter = new_topic(config, "e2e-dlq");
        let group = fresh_topic("e2e-group");
        let args = |extra: &[(&str, &str)]| -> Vec<String> {
            [
                ("brokers", config.bootstrap_servers.as_str()),
                ("input", input),
                ("output", &output),
                ("group", &group),
                ("count", &count.to_string()),
            ]
            .iter()
            .chain(extra)
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
        };
        let command = match how {
            Worker::Sluice => {
                let pipeline = dir.join(format!("{group}.json"));
                let definition = json!({
                    "name": "bench",
                    "group_id": group,
                    "inputs": [input],
                    "outputs": [output],
                    "transform": "stay-category",
                    "dead_letter": dead_letter,
                    "batch_size": STEP,
                });
                std::fs::write(&pipeline, definition.to_string()).expect("pipeline file");
                let mut command = Command::new(&sluice);
                command
                    .args(["enrich", "--pipeline"])
                    .arg(&pipeline)
                    .args(["--brokers", &config.bootstrap_servers])
                    .env("SLUICE_TRANSFORMS_DIR", sluice_tests::guests_dir());
                Some(command)
            }
            Worker::Pipe { headers } => {
                let mut command = Command::new(&pipe);
                command.args(args(&[("headers", if headers { "1" } else { "0" })]));
                Some(command)
            }
            Worker::Python { logic, headers } => bench::python().map(|python| {
                let mut command = Command::new(python);
                command
                    .env("PYTHONDONTWRITEBYTECODE", "1")
                    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/e2e_worker.py"))
                    .args(args(&[
                        ("logic", if logic { "1" } else { "0" }),
                        ("headers", if headers { "1" } else { "0" }),
                    ]));
                command
            }),
        };
        let run = command.and_then(|command| {
            let program = PathBuf::from(command.get_program());
            if !program.exists() {
                eprintln!(
                    "skipping {name}: no {} (cargo build --release -p sluice, and \
                     -p sluice-tests --example rdkafka_pipe)",
                    program.display()
                );
                return None;
            }
            eprintln!("{name}...");
            let log = dir.join(format!("{group}.log"));
            let run = watch.run(command, &log, &output, count, matches!(how, Worker::Sluice));
            let produced = delivered_to(config, &output);
            assert_eq!(produced, count, "{name}: every record produced once");
            Some(run)
        });
        runs.push((name, run));
    };
    worker(RDKAFKA_PIPE, Worker::Pipe { headers: false });
    worker(RDKAFKA_HEADERS, Worker::Pipe { headers: true });
    worker(ENRICH, Worker::Sluice);
    worker(
        PYTHON_PIPE,
        Worker::Python {
            logic: false,
            headers: false,
        },
    );
    worker(
        PYTHON_WORKER,
        Worker::Python {
            logic: true,
            headers: false,
        },
    );
    worker(
        PYTHON_HEADERS,
        Worker::Python {
            logic: true,
            headers: true,
        },
    );

    let mut table = Table::on_cpu_time(format!(
        "enrichment end to end: {count} bookings on {PARTITIONS} partitions, each worker a \
         process of its own, timed whole (start to its last record in its output topic)"
    ));
    let find = |name: &str| {
        runs.iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, r)| r.as_ref())
    };
    for (name, peer) in [
        (RDKAFKA_PIPE, None),
        (RDKAFKA_HEADERS, Some(RDKAFKA_PIPE)),
        (ENRICH, Some(RDKAFKA_HEADERS)),
        (PYTHON_PIPE, None),
        (PYTHON_WORKER, Some(PYTHON_PIPE)),
        (PYTHON_HEADERS, Some(PYTHON_PIPE)),
    ] {
        table.row(name, find(name).map(|r| &r.measured), peer);
    }
    // CPU per record over the limit's: the rates' inverse ratio.
    table.target_ratio(
        "sluice enrich CPU per record vs the rdkafka pipe with the same headers",
        table.ratio(RDKAFKA_HEADERS, ENRICH),
        1.5,
        true,
    );
    table.target_ratio(
        "sluice enrich records per CPU-second vs the python worker with the same headers",
        table.ratio(ENRICH, PYTHON_HEADERS),
        4.0,
        false,
    );
    table.target_ratio(
        "sluice enrich records per CPU-second vs the python worker without them",
        table.ratio(ENRICH, PYTHON_WORKER),
        4.0,
        false,
    );
    table.target_seconds(
        "sluice enrich at full speed after its first output",
        find(ENRICH).and_then(|r| r.full_speed_after),
        2.0,
    );
    for (name, run) in &runs {
        if let Some(run) = run {
            table.note(format!(
                "{name}: first output {:.1} s after start, full speed {} after it, \
                 {:.2} CPU-µs per record",
                run.first_output,
                run.full_speed_after
                    .map_or("never".to_owned(), |s| format!("{s:.1} s")),
                run.measured.cpu_seconds * 1e6 / run.measured.records as f64,
            ));
        }
    }
    table
}

#[derive(Clone, Copy)]
enum Worker {
    Sluice,
    Pipe { headers: bool },
    Python { logic: bool, headers: bool },
}

/// What a worker process did, measured from outside.
struct Run {
    measured: Measured,
    /// Seconds from its start to its first record in the output topic.
    first_output: f64,
    /// Seconds from its first output to its first second at full speed.
    full_speed_after: Option<f64>,
}

/// Watches output topics' end offsets, with one client made before any
/// worker starts.
struct Watch {
    consumer: BaseConsumer,
}

impl Watch {
    fn new(config: &KafkaConfig) -> Watch {
        let consumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap_servers)
            .set("group.id", fresh_topic("e2e-watch"))
            .create()
            .expect("watching client");
        Watch { consumer }
    }

    /// Records in `topic` now.
    fn records(&self, topic: &str) -> u64 {
        (0..PARTITIONS)
            .map(|p| {
                self.consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(5))
                    .map_or(0, |(low, high)| (high - low) as u64)
            })
            .sum()
    }

    /// Runs `command` until `count` records are in `output` (then SIGTERM
    /// when `stop`, else it ends by itself) and it has ended.
    fn run(&self, mut command: Command, log: &Path, output: &str, count: u64, stop: bool) -> Run {
        let log_file = std::fs::File::create(log).expect("log file");
        #[expect(
            clippy::zombie_processes,
            reason = "reaped by wait4 below, which gives its CPU time too"
        )]
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let started = Instant::now();
        let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
        let status_path = format!("/proc/{pid}/status");
        let mut peak_rss_kb = 0;
        let mut samples: Vec<(f64, u64)> = Vec::new();
        let mut exited = None;
        let deadline = started + Duration::from_secs(1_800);
        loop {
            let status = std::fs::read_to_string(&status_path).unwrap_or_default();
            peak_rss_kb = peak_rss_kb.max(status_kb(&status, "VmHWM:"));
            let records = self.records(output);
            samples.push((started.elapsed().as_secs_f64(), records));
            if records >= count {
                break;
            }
            if exited.is_none() {
                exited = reap(pid, false);
            }
            let log_text = || std::fs::read_to_string(log).unwrap_or_default();
            assert!(
                exited.is_none() || samples.len() < 2 || samples[samples.len() - 2].1 < records,
                "{command:?} ended with {records} of {count} records; its log:\n{}",
                log_text()
            );
            assert!(
                Instant::now() < deadline,
                "{command:?}: {records} of {count} records after 30 min; its log:\n{}",
                log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let wall = started.elapsed().as_secs_f64();
        if stop && exited.is_none() {
            // SAFETY: `pid` is our child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let usage = match exited {
            Some(usage) => usage,
            None => reap(pid, true).expect("the worker ends"),
        };
        let (first_output, full_speed_after) = ramp(&samples, count);
        Run {
            measured: Measured {
                records: count,
                bytes: 0,
                outputs: count,
                seconds: wall,
                cpu_seconds: usage,
                peak_rss_kb,
                input_rss_kb: 0,
                extra: Default::default(),
            },
            first_output,
            full_speed_after,
        }
    }
}

/// The CPU seconds of child `pid` once it has ended (waiting for it when
/// `block`); `None` while it runs.
fn reap(pid: libc::pid_t, block: bool) -> Option<f64> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY: `pid` is our child, not yet reaped; both are valid for writing.
    let waited = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
    if waited != pid {
        return None;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

fn status_kb(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// From `(seconds since start, records in the output)` samples: when the
/// first output appeared, and how long after it the worker first ran a
/// whole second at 80% of its steady rate (its rate between 25% and 90%
/// of the records).
fn ramp(samples: &[(f64, u64)], count: u64) -> (f64, Option<f64>) {
    let at = |share: f64| {
        samples
            .iter()
            .find(|(_, n)| *n as f64 >= share * count as f64)
            .copied()
    };
    let first = samples
        .iter()
        .find(|(_, n)| *n > 0)
        .map_or(0.0, |(t, _)| *t);
    let steady = match (at(0.25), at(0.9)) {
        (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => (n1 - n0) as f64 / (t1 - t0),
        _ => return (first, None),
    };
    let full = samples.iter().enumerate().find_map(|(i, &(t, n))| {
        let (t0, n0) = samples[..i]
            .iter()
            .rev()
            .find(|(t0, _)| t - t0 >= 1.0)
            .copied()?;
        (t0 >= first && (n - n0) as f64 / (t - t0) >= 0.8 * steady).then_some(t0 - first)
    });
    (first, full)
}

fn delivered_to(config: &KafkaConfig, topic: &str) -> u64 {
    let reader = BoundedReader::from_earliest(config, topic).expect("output topic");
    reader
        .ranges()
        .iter()
        .map(|r| (r.end - r.start) as u64)
        .sum()
}
