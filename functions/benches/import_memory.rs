//! What `sluice import` holds in memory: one JSON lines file much bigger
//! than `--keep-budget-mb` (200 MB of generated bookings, budget 16 MiB),
//! imported from a local folder and from Azurite, each beside the same
//! binary importing a file of 1,000 rows from the same place (the
//! process's fixed cost: librdkafka, the runtimes, the storage clients, the
//! binary itself) in the same run. Each import is a
//! process of its own, the real `sluice import`; its peak RSS is its own
//! `VmHWM` (see `bench::run_measured`). The target: the peak less the
//! small import's stays within the budget plus a constant (bounded buffers:
//! a chunk of records in the producer, the readers' buffers), whatever the
//! file size.
//!
//! `cargo bench -p sluice --bench import_memory [-- MEGABYTES]` (200 MB,
//! budget 16 MiB; 12 MB and a 2 MiB budget under `cargo test
//! --all-targets`). Needs the broker and Azurite (`scripts/services.sh up`).
//! `SLUICE_BIN=path` runs another `sluice` binary instead of this build's.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use sluice_host::generate::{ExpediaGenerator, StayMix};
use sluice_host::import::progress_key;
use sluice_host::storage::Storage;
use sluice_tests::bench::{self, ProcessUsage, run_measured};
use sluice_tests::{azurite, azurite_url, fresh_topic};

/// What the process may hold beyond the budget: the producer's chunk of
/// records and librdkafka's copies of it, the readers' buffers, the
/// allocator's slack.
const CONSTANT_MIB: f64 = 48.0;
/// Rows in the small import that measures the process's fixed cost.
const SMALL_ROWS: usize = 1_000;

fn main() {
    let megabytes = bench::count(200, 12);
    let budget_mib: usize = if bench::benchmarking() { 16 } else { 2 };
    let dir = tempfile::tempdir().expect("temp folder");
    let big = dir.path().join("big");
    let small = dir.path().join("small");
    eprintln!("writing {megabytes} MB of JSON lines...");
    let rows = write_bookings(&big.join("bookings.jsonl"), |written, _| {
        written >= megabytes * 1_000_000
    });
    write_bookings(&small.join("bookings.jsonl"), |_, rows| rows >= SMALL_ROWS);
    let size = std::fs::metadata(big.join("bookings.jsonl"))
        .expect("file written")
        .len();

    // Two Azure folders: the big file's, and a small one's for the fixed
    // cost of an import from Azure (its HTTP and TLS clients).
    let credentials = azurite::credentials();
    let azure_big = azurite_url("import-memory", "big");
    let azure_small = azurite_url("import-memory", "small");
    for (url, from) in [(&azure_big, &big), (&azure_small, &small)] {
        let storage = Storage::open(url, &credentials).expect("Azurite");
        let upload = dir.path().join("upload.jsonl");
        std::fs::copy(from.join("bookings.jsonl"), &upload).expect("copy for the upload");
        storage
            .upload(&upload, "bookings.jsonl")
            .expect("upload to Azurite");
    }

    let folder = |path: &Path| path.to_str().expect("UTF-8 path").to_owned();
    let runs = [
        ("local folder", folder(&small), folder(&big)),
        ("Azurite", azure_small, azure_big),
    ]
    .map(|(source, small, big)| {
        let fixed = import(
            &format!("small file, {source}"),
            &small,
            budget_mib,
            SMALL_ROWS,
        );
        let held = import(&format!("big file, {source}"), &big, budget_mib, rows);
        (source, fixed, held)
    });

    println!(
        "\nsluice import of one JSON lines file of {:.0} MB ({rows} rows), \
         --keep-budget-mb {budget_mib}, one process each\n",
        size as f64 / 1e6
    );
    println!(
        "{:<28} {:>9} {:>8} {:>10} {:>10} {:>14} {:>13} {:>13}",
        "variant", "rows", "seconds", "rows/s", "peak RSS", "over fixed", "/ file size", "/ budget"
    );
    let mib = |kb: u64| kb as f64 / 1024.0;
    let mut targets = Vec::new();
    for (source, fixed, held) in &runs {
        for (name, usage, rows, big) in [
            (format!("small file, {source}"), fixed, SMALL_ROWS, false),
            (format!("big file, {source}"), held, rows, true),
        ] {
            let over = mib(usage.peak_rss_kb.saturating_sub(fixed.peak_rss_kb));
            println!(
                "{name:<28} {rows:>9} {:>8.1} {:>10.0} {:>7.0} MiB {:>10.0} MiB {:>12.2}x {:>12.2}x",
                usage.seconds,
                rows as f64 / usage.seconds.max(1e-9),
                mib(usage.peak_rss_kb),
                over,
                over * 1024.0 * 1024.0 / size as f64,
                over / budget_mib as f64,
            );
            if big {
                let bound = budget_mib as f64 + CONSTANT_MIB;
                targets.push(format!(
                    "target: {name}: peak less the small import's {over:.0} MiB <= budget \
                     {budget_mib} MiB + {CONSTANT_MIB} MiB = {bound:.0} MiB (file {:.0} MiB): {}",
                    size as f64 / 1024.0 / 1024.0,
                    if over <= bound { "met" } else { "NOT met" }
                ));
            }
        }
    }
    println!(
        "\npeak RSS: the process's high-water mark (VmHWM); over fixed: less the \
         small import's from the same place; the ratios divide that by the file's \
         size and by the budget\n"
    );
    for target in targets {
        println!("{target}");
    }
}

/// Writes generated bookings as JSON lines until `enough(bytes, rows)`;
/// returns the rows written.
fn write_bookings(path: &Path, enough: impl Fn(usize, usize) -> bool) -> usize {
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("folder");
    let mut out = BufWriter::new(std::fs::File::create(path).expect("create file"));
    let (mut written, mut rows) = (0, 0);
    for booking in ExpediaGenerator::new(17, StayMix::default()) {
        if enough(written, rows) {
            break;
        }
        let line = serde_json::to_vec(&booking).expect("JSON");
        out.write_all(&line).expect("write");
        out.write_all(b"\n").expect("write");
        written += line.len() + 1;
        rows += 1;
    }
    out.flush().expect("write");
    rows
}

/// One `sluice import` of `from` into a fresh topic; checks from the
/// progress file that every row went in.
fn import(name: &str, from: &str, budget_mib: usize, rows: usize) -> ProcessUsage {
    eprintln!("{name}: importing...");
    let topic = fresh_topic("bench-import-memory");
    let credentials = azurite::credentials();
    // $SLUICE_BIN measures another build (an earlier commit's) the same way.
    let binary = std::env::var_os("SLUICE_BIN").unwrap_or(env!("CARGO_BIN_EXE_sluice").into());
    let mut command = Command::new(binary);
    command
        .args(["import", "--from", from, "--topic", &topic])
        .args(["--keep-budget-mb", &budget_mib.to_string()])
        .env(
            "SLUICE_AZURE_ACCOUNT",
            credentials.account.unwrap_or_default(),
        )
        .env("SLUICE_AZURE_KEY", credentials.key.unwrap_or_default())
        .env(
            "SLUICE_AZURE_ENDPOINT",
            credentials.endpoint.unwrap_or_default(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let usage = run_measured(command);
    assert!(usage.success, "{name}: sluice import failed");
    let storage = Storage::open(from, &azurite::credentials()).expect("the imported folder");
    let progress: Value =
        serde_json::from_slice(&storage.get(&progress_key(&topic)).expect("progress file"))
            .expect("progress JSON");
    let file = &progress["files"]["bookings.jsonl"];
    assert_eq!(file["done"], true, "{name}: {progress}");
    assert_eq!(file["rows"], rows as u64, "{name}: every row imported");
    usage
}
