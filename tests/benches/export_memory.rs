//! What an export of many partitions holds in memory: a 64-partition topic
//! of 1 KB records read into one file per partition, under memory budgets
//! of 16, 64 and 256 MiB (`--memory-budget-mb`; the open row groups of all
//! the files together), each run in a process of its own against the broker
//! `scripts/services.sh up` started. Without a budget each partition's
//! writer would buffer up to a row group of 64k rows (64 MB at 1 KB), so 64
//! partitions could hold 4 GB. The target: the run's peak less its resident
//! set at the start stays within twice the budget plus a constant.
//!
//! Then the same topic exported to Azurite (a remote store, so files wait
//! on the local disk before their upload), by staging budget
//! (`--staging-budget-mb`): without one, every partition's file waits on
//! disk until its block of offsets ends; with one, the largest are
//! uploaded early. The target: the staging disk's peak stays within the
//! budget plus one step's records.
//!
//! `cargo bench -p sluice-tests --bench export_memory [-- RECORDS]`
//! (256,000 records; 6,400 under `cargo test --all-targets`).

use serde_json::json;
use sluice_host::export::{ExportOptions, export_topic};
use sluice_host::kafka::{ProduceRecord, Producer, ensure_topic};
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_tests::bench::{self, Child, Stopwatch, Table, run_variant};
use sluice_tests::{broker, fresh_topic, plan};

const PARTITIONS: i32 = 64;
const BUDGETS_MIB: [usize; 3] = [16, 64, 256];
/// What the run holds besides the row groups, at most: the reader's
/// prefetch, the uploads' buffers, the Parquet writers themselves.
const CONSTANT_MIB: usize = 128;
/// Staging budgets tried on the remote store (MiB; 0: none).
const STAGING_MIB: [u64; 3] = [0, 16, 4];
/// What one step's records can add past the staging budget before it is
/// checked: a step of 5,000 records of 1 KB, compressed about in half.
const STEP_MIB: f64 = 4.0;

fn main() {
    if let Some(child) = Child::from_args() {
        return variant(&child);
    }
    let records = bench::count(256_000, 6_400);
    let config = broker();
    let topic = fresh_topic("bench-memory");
    ensure_topic(&config, &topic, PARTITIONS).expect("topic");
    eprintln!("producing {records} records of about 1 KB to {PARTITIONS} partitions of {topic}...");
    let producer = Producer::new(&config).expect("producer");
    // Hex from a xorshift: text that compresses about as real notes do,
    // not to nothing as one repeated letter would.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut note = || -> String {
        (0..900)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b"0123456789abcdef"[(state % 16) as usize])
            })
            .collect()
    };
    let all: Vec<ProduceRecord> = (0..records)
        .map(|i| ProduceRecord {
            timestamp: None,
            topic: topic.clone(),
            partition: Some(i as i32 % PARTITIONS),
            key: None,
            value: Some(
                json!({"id": i, "hotel": i % 977, "note": note()})
                    .to_string()
                    .into_bytes(),
            ),
            headers: Vec::new(),
        })
        .collect();
    let value_bytes: usize = all
        .iter()
        .filter_map(|r| r.value.as_ref())
        .map(Vec::len)
        .sum();
    for chunk in all.chunks(10_000) {
        producer.send_all(chunk).expect("produce");
    }
    drop(all);

    let mut table = Table::new(format!(
        "export of {records} records of 1 KB in {PARTITIONS} partitions, one file each, \
         by memory budget (one process each)"
    ));
    let mut targets = Vec::new();
    for budget in BUDGETS_MIB {
        let measured = run_variant(
            "export",
            &[
                ("topic", topic.clone()),
                ("budget_mib", budget.to_string()),
                ("value_bytes", value_bytes.to_string()),
            ],
        );
        assert_eq!(measured.records, records as u64, "every record exported");
        let held_mib = measured.peak_rss_kb.saturating_sub(measured.input_rss_kb) as f64 / 1024.0;
        let bound = (2 * budget + CONSTANT_MIB) as f64;
        targets.push(format!(
            "target: budget {budget} MiB: peak less start {held_mib:.0} MiB <= 2 x budget + \
             {CONSTANT_MIB} MiB = {bound:.0} MiB: {}",
            if held_mib <= bound { "met" } else { "NOT met" }
        ));
        table.row(&format!("budget {budget} MiB"), Some(&measured), None);
    }
    table.print();
    println!();
    for line in targets {
        println!("{line}");
    }

    println!();
    let url = sluice_tests::azurite_url("bench-staging", "lake");
    let mut staging = Table::new(format!(
        "export of the same {records} records to Azurite, by staging budget (one process each)"
    ));
    let mut targets = Vec::new();
    for budget in STAGING_MIB {
        let measured = run_variant(
            "remote",
            &[
                ("topic", topic.clone()),
                ("url", format!("{url}/{budget}")),
                ("staging_mib", budget.to_string()),
                ("value_bytes", value_bytes.to_string()),
            ],
        );
        assert_eq!(measured.records, records as u64, "every record exported");
        let peak = measured
            .extra
            .get("staging_peak_mib")
            .copied()
            .unwrap_or(f64::NAN);
        let files = measured.extra.get("files").copied().unwrap_or(f64::NAN);
        let label = if budget == 0 {
            "no staging budget".to_owned()
        } else {
            format!("staging budget {budget} MiB")
        };
        targets.push(if budget == 0 {
            format!("{label}: staging peak {peak:.1} MiB, {files} files")
        } else {
            let bound = budget as f64 + STEP_MIB;
            format!(
                "target: {label}: staging peak {peak:.1} MiB <= budget + one step = {bound:.0} MiB \
                 ({files} files): {}",
                if peak <= bound { "met" } else { "NOT met" }
            )
        });
        staging.row(&label, Some(&measured), None);
    }
    staging.print();
    println!();
    for line in targets {
        println!("{line}");
    }
}

fn variant(child: &Child) {
    if child.variant == "remote" {
        return remote(child);
    }
    let topic = child.arg("topic");
    let budget = child.number("budget_mib") << 20;
    let root = tempfile::tempdir().expect("a folder");
    let storage = Storage::open(
        root.path().to_str().expect("a UTF-8 path"),
        &AzureCredentials::default(),
    )
    .expect("storage");
    let plan = plan(topic, &fresh_topic("g"), json!({}));
    let mut options = ExportOptions::new("bench");
    options.memory_budget = budget;
    let mut watch = Stopwatch::default();
    let report = watch
        .time(|| export_topic(&broker(), &plan, &storage, &options, None, |_| {}).expect("export"));
    assert_eq!(
        report.files.len(),
        PARTITIONS as usize,
        "one file per partition"
    );
    let bytes = child.number("value_bytes") as u64;
    child.report(report.records, bytes, report.records, &watch);
}

/// The export to a remote store under a staging budget.
fn remote(child: &Child) {
    let topic = child.arg("topic");
    let storage =
        Storage::open(child.arg("url"), &sluice_tests::azurite::credentials()).expect("storage");
    let plan = plan(topic, &fresh_topic("g"), json!({}));
    let mut options = ExportOptions::new("bench");
    options.memory_budget = 64 << 20;
    options.staging_budget = match child.number("staging_mib") as u64 {
        0 => u64::MAX,
        mib => mib << 20,
    };
    let mut watch = Stopwatch::default();
    let report = watch
        .time(|| export_topic(&broker(), &plan, &storage, &options, None, |_| {}).expect("export"));
    let bytes = child.number("value_bytes") as u64;
    let extra = [
        (
            "staging_peak_mib".to_owned(),
            report.staging_peak_bytes as f64 / f64::from(1 << 20),
        ),
        ("files".to_owned(), report.files.len() as f64),
    ]
    .into_iter()
    .collect();
    child.report_with(report.records, bytes, report.records, &watch, extra);
}
