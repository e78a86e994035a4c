//! The export of one topic as plain Parquet files and as a Delta table,
//! side by side in one run against the broker `scripts/services.sh up`
//! started: records/s of each (best of three rounds, interleaved, the
//! order swapped each round), then what the Delta table itself costs per
//! run: reading its log, the commit (a create-only put of the next
//! version), and the checkpoint every tenth version, over a series of
//! small runs as a timer makes them, into a local folder and into Azurite.
//!
//! `cargo bench -p sluice-tests --bench delta_export [-- RECORDS]`
//! (200,000 generated bookings in 3 partitions; 2,000 under `cargo test
//! --all-targets`).

use std::path::Path;

use sluice_host::config::ExportFormat;
use sluice_host::export::{ExportOptions, TopicReport, export_topic};
use sluice_host::generate::{ExpediaGenerator, StayMix};
use sluice_host::kafka::{ProduceRecord, Producer, ReadPlan, ensure_topic};
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_tests::{broker, fresh_topic, plan};

const PARTITIONS: i32 = 3;
/// Small runs of the commit-cost series, and records in each.
const SMALL_RUNS: usize = 25;
const SMALL_RUN_RECORDS: usize = 300;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // then this is a quick run over a few records.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let records: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benchmarking { 200_000 } else { 2_000 });
    let config = broker();
    let producer = Producer::new(&config).expect("producer");
    let topic = fresh_topic("bench-delta");
    ensure_topic(&config, &topic, PARTITIONS).expect("topic");
    eprintln!("producing {records} generated bookings to {topic}...");
    produce(&producer, &topic, 0, records);

    let mut best: Vec<(ExportFormat, TopicReport)> = Vec::new();
    for round in 0..3 {
        let mut order = [ExportFormat::Parquet, ExportFormat::Delta];
        if round % 2 == 1 {
            order.reverse();
        }
        for format in order {
            let root = tempfile::tempdir().expect("a folder");
            let plan = plan(&topic, &fresh_topic("g"), serde_json::json!({}));
            let report = export(
                &config,
                &plan,
                &local(root.path()),
                format,
                &format!("run-{round}"),
            );
            assert_eq!(report.records as usize, records, "every record exported");
            eprintln!("round {round}: {format:?} {:.2} s", report.seconds);
            match best.iter_mut().find(|(f, _)| *f == format) {
                Some((_, kept)) if kept.seconds <= report.seconds => {}
                Some((_, kept)) => *kept = report,
                None => best.push((format, report)),
            }
        }
    }
    best.sort_by_key(|(format, _)| *format != ExportFormat::Parquet);
    let parquet = best[0].1.seconds;
    println!(
        "\nexport of {records} records ({PARTITIONS} partitions, generated bookings), best of 3 rounds:\n"
    );
    println!("| | records/s | seconds | files | MiB | vs Parquet |");
    println!("|---|---|---|---|---|---|");
    for (format, report) in &best {
        println!(
            "| {} | {:.0} | {:.2} | {} | {:.1} | {:.2}x |",
            match format {
                ExportFormat::Parquet => "Parquet files",
                ExportFormat::Delta => "Delta table",
            },
            report.records as f64 / report.seconds,
            report.seconds,
            report.files.len(),
            report.bytes() as f64 / (1 << 20) as f64,
            parquet / report.seconds,
        );
    }
    if let Some(delta) = best.iter().find_map(|(_, r)| r.delta.as_ref()) {
        println!(
            "\nof the Delta run: reading the (absent) log {:.1} ms, {} commit(s) {:.1} ms",
            delta.load_seconds * 1e3,
            delta.commits,
            delta.commit_seconds * 1e3
        );
    }

    // A table growing run by run, as a timer grows it: what each run spends
    // on the log, the commit and the checkpoint, locally and on Azurite.
    let local_root = tempfile::tempdir().expect("a folder");
    let series = [
        ("local folder", local(local_root.path())),
        (
            "Azurite",
            Storage::open(
                &sluice_tests::azurite_url("bench-delta", "lake"),
                &sluice_tests::azurite::credentials(),
            )
            .expect("Azurite"),
        ),
    ];
    let mut figures: Vec<[Vec<f64>; 3]> = Vec::new();
    for (_, storage) in &series {
        let small = fresh_topic("bench-delta-small");
        ensure_topic(&config, &small, PARTITIONS).expect("topic");
        let group = fresh_topic("g");
        let mut costs: [Vec<f64>; 3] = Default::default();
        for run in 0..SMALL_RUNS {
            produce(
                &producer,
                &small,
                run * SMALL_RUN_RECORDS,
                SMALL_RUN_RECORDS,
            );
            let plan = plan(&small, &group, serde_json::json!({}));
            let report = export(
                &config,
                &plan,
                storage,
                ExportFormat::Delta,
                &format!("run-{run}"),
            );
            let delta = report.delta.expect("a Delta report");
            assert_eq!(delta.version, Some(run as u64));
            costs[0].push(delta.load_seconds * 1e3);
            costs[1].push(delta.commit_seconds * 1e3);
            if delta.checkpoints > 0 {
                costs[2].push(delta.checkpoint_seconds * 1e3);
            }
        }
        figures.push(costs);
    }
    println!(
        "\n{SMALL_RUNS} runs of {SMALL_RUN_RECORDS} records into one table (a file per partition each, a checkpoint every 10 versions), per run in ms, median (max):\n"
    );
    let names: Vec<&str> = series.iter().map(|(name, _)| *name).collect();
    println!("| | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(series.len()));
    for (index, what) in ["reading the log", "the commit", "a checkpoint"]
        .iter()
        .enumerate()
    {
        let cells: Vec<String> = figures
            .iter_mut()
            .map(|costs| {
                let values = &mut costs[index];
                values.sort_by(f64::total_cmp);
                match (
                    values.get(values.len().saturating_sub(1) / 2),
                    values.last(),
                ) {
                    (Some(median), Some(max)) => format!("{median:.1} ({max:.1})"),
                    _ => "-".into(),
                }
            })
            .collect();
        println!("| {what} | {} |", cells.join(" | "));
    }
}

fn local(root: &Path) -> Storage {
    Storage::open(
        root.to_str().expect("a UTF-8 path"),
        &AzureCredentials::default(),
    )
    .expect("storage")
}

fn produce(producer: &Producer, topic: &str, skip: usize, count: usize) {
    let records: Vec<ProduceRecord> = ExpediaGenerator::new(7, StayMix::default())
        .skip(skip)
        .take(count)
        .enumerate()
        .map(|(i, booking)| ProduceRecord {
            timestamp: None,
            topic: topic.to_owned(),
            partition: Some((i % PARTITIONS as usize) as i32),
            key: None,
            value: Some(booking.to_string().into_bytes()),
            headers: Vec::new(),
        })
        .collect();
    for chunk in records.chunks(10_000) {
        producer.send_all(chunk).expect("produce");
    }
}

fn export(
    config: &sluice_host::kafka::KafkaConfig,
    plan: &ReadPlan,
    storage: &Storage,
    format: ExportFormat,
    run_id: &str,
) -> TopicReport {
    let mut options = ExportOptions::new(run_id);
    options.format = format;
    export_topic(config, plan, storage, &options, None, |_| {}).expect("export")
}
