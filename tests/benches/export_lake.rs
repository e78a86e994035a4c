//! A time-partitioned export after many small runs, as a timer leaves it:
//! the files it holds and how long DuckDB takes to count one hour's records
//! (`count(*)` with a `dt` and `hour` filter), without compaction and with
//! it (each run merging the small files of the hours it completes), side
//! by side with the ratio; and what the runs themselves took.
//!
//! `cargo bench -p sluice-tests --bench export_lake [-- RUNS]` (100 runs of
//! 8 partitions, 40 records each a run, six minutes of record time a run:
//! ten hours; 12 runs under `cargo test --all-targets`). The broker from
//! `scripts/services.sh up`; DuckDB from the tool virtualenv.

use std::time::Instant;

use serde_json::json;
use sluice_host::config::{LateData, PartitionBy};
use sluice_host::export::{ExportOptions, TimeLayout};
use sluice_host::kafka::ensure_topic;
use sluice_host::storage::Storage;
use sluice_tests::bench;
use sluice_tests::exports::{export, values};
use sluice_tests::lake::{at_minute, duckdb};
use sluice_tests::{broker, fresh_topic, produce_stamped};

const PARTITIONS: i32 = 8;
const PER_RUN: usize = 40;
/// Minutes of record time a run covers.
const RUN_MINUTES: usize = 6;
/// Timings of the query, the best one kept.
const QUERY_REPEATS: usize = 20;

struct Outcome {
    files: usize,
    export_seconds: f64,
    rows: u64,
    files_read: u64,
    query_seconds: f64,
}

fn main() {
    // Under `cargo test`, enough runs (72 minutes of record time) for one
    // hour to be complete and compacted.
    let runs = bench::count(100, 12);
    let config = broker();
    let topic = fresh_topic("bench-lake");
    ensure_topic(&config, &topic, PARTITIONS).expect("topic");
    let per_partition = runs * PER_RUN;
    let spacing_ms = (RUN_MINUTES * 60_000 / PER_RUN) as i64;
    for partition in 0..PARTITIONS {
        produce_stamped(&config, &topic, partition, &values(0, per_partition), |i| {
            Some(at_minute(0) + i as i64 * spacing_ms + i64::from(partition))
        });
    }
    // An hour in the middle, complete in both.
    let hours = (runs * RUN_MINUTES).div_ceil(60);
    let hour = 10 + (hours / 2).min(hours.saturating_sub(2)) as u32;
    let filter = format!("dt = '2026-12-05' AND hour = {hour}");
    let mut outcomes = Vec::new();
    for compact in [false, true] {
        let root = tempfile::tempdir().expect("temp folder");
        let storage = Storage::open(root.path().to_str().expect("UTF-8"), &Default::default())
            .expect("storage");
        let group = fresh_topic("bench-lake-g");
        let started = Instant::now();
        for run in 0..runs {
            let mut options = ExportOptions::new(format!("run-{run:04}"));
            options.time = Some(TimeLayout {
                by: PartitionBy::Hour,
                field: None,
                late: LateData::Strict,
            });
            options.compact = compact;
            let report = export(
                &config,
                &topic,
                &group,
                json!({"num_messages": PER_RUN}),
                &storage,
                &options,
            );
            assert_eq!(report.records as usize, PER_RUN * PARTITIONS as usize);
        }
        let export_seconds = started.elapsed().as_secs_f64();
        let glob = root.path().join(format!("topic={topic}/**/*.parquet"));
        let files = sluice_tests::stored::files_under(&root.path().join(format!("topic={topic}")))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .count();
        let Some(read) = duckdb(&glob, Some(&filter), QUERY_REPEATS) else {
            return;
        };
        assert_eq!(
            read["rows"].as_u64(),
            Some((per_partition * PARTITIONS as usize) as u64),
            "every record once: {read}"
        );
        assert_eq!(read["pairs"], read["rows"], "{read}");
        outcomes.push(Outcome {
            files,
            export_seconds,
            rows: read["where_count"].as_u64().unwrap_or(0),
            files_read: read["files_read"].as_u64().unwrap_or(0),
            query_seconds: read["seconds"].as_f64().unwrap_or(f64::NAN),
        });
        drop(root);
        print_progress(compact, outcomes.last());
    }
    let [plain, compacted] = outcomes.as_slice() else {
        return;
    };
    assert_eq!(plain.rows, compacted.rows, "both count the hour alike");
    assert!(
        compacted.files < plain.files,
        "compaction leaves fewer files"
    );
    println!(
        "\n{runs} runs of {PARTITIONS} partitions x {PER_RUN} records ({RUN_MINUTES} minutes of \
         record time a run), then DuckDB: SELECT count(*) WHERE {filter} ({} rows), best of \
         {QUERY_REPEATS}\n",
        plain.rows
    );
    println!(
        "{:<22} {:>7} {:>12} {:>13} {:>16}",
        "variant", "files", "files read", "query ms", "runs' seconds"
    );
    for (name, o) in [
        ("without compaction", plain),
        ("with compaction", compacted),
    ] {
        println!(
            "{name:<22} {:>7} {:>12} {:>13.2} {:>16.1}",
            o.files,
            o.files_read,
            o.query_seconds * 1e3,
            o.export_seconds
        );
    }
    println!(
        "{:<22} {:>6.1}x {:>11.1}x {:>12.2}x {:>15.2}x",
        "without / with",
        plain.files as f64 / compacted.files.max(1) as f64,
        plain.files_read as f64 / compacted.files_read.max(1) as f64,
        plain.query_seconds / compacted.query_seconds,
        plain.export_seconds / compacted.export_seconds
    );
}

fn print_progress(compact: bool, outcome: Option<&Outcome>) {
    if let Some(o) = outcome {
        eprintln!(
            "{}: {} files, query {:.2} ms",
            if compact {
                "with compaction"
            } else {
                "without"
            },
            o.files,
            o.query_seconds * 1e3
        );
    }
}
