//! stay-category over 1,000,000 generated bookings: native Rust, and the
//! WebAssembly component one record per call and in batches of 100, 1,000
//! and 10,000, with epoch interruption on (as in production: it is what
//! lets a deadline stop a looping guest) and off (to show what its checks
//! cost). Then the same calls on `{}` values: what crossing the boundary
//! costs when there is almost nothing to parse. Each variant runs in a
//! process of its own; native and WebAssembly (both settings) must give
//! the same bytes for every record.
//!
//! `cargo bench -p sluice-tests --bench stay_category [-- RECORDS]`
//! (1,000,000; 2,000 under `cargo test --all-targets`; needs
//! `scripts/build-guests.sh` first).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::{Limits, Runtime, RuntimeConfig, Transformer};
use sluice_tests::bench::{self, Child, Measured, Stopwatch, Table, run_variant};

const BATCHES: [usize; 4] = [1, 100, 1_000, 10_000];

fn main() {
    if let Some(child) = Child::from_args() {
        return variant(&child);
    }
    let count = bench::count(1_000_000, 2_000);
    let dir = tempfile::tempdir().expect("temp folder");
    eprintln!("generating {count} bookings...");
    let values = bench::expedia_values(count, 1);
    let input = dir.path().join("bookings.frames");
    bench::write_frames(&input, values.iter().map(Vec::as_slice));
    let empty = dir.path().join("empty.frames");
    let cache = dir.path().join("artifacts");
    bench::write_frames(&empty, values.iter().map(|_| b"{}".as_slice()));

    // Native and WebAssembly, epoch interruption on and off, agree on
    // every record (all of them in a smoke run, the first 10,000 otherwise).
    let sample = records(&values[..count.min(10_000)]);
    let native: Vec<Vec<u8>> = sample
        .iter()
        .map(|r| stay_rules::enrich(r.value.as_deref().unwrap_or_default()).expect("native"))
        .collect();
    for epoch in [true, false] {
        let wasm: Vec<Vec<u8>> = transformer(epoch, &cache)
            .process(&sample)
            .into_iter()
            .map(|o| match o {
                Ok(Outcome::Emit(mut out)) => out.remove(0).value.unwrap_or_default(),
                other => panic!("unexpected outcome {other:?}"),
            })
            .collect();
        assert!(
            native == wasm,
            "native and WebAssembly (epoch interruption {epoch}) disagree"
        );
    }
    eprintln!("native and WebAssembly agree on {} records", sample.len());
    drop((values, sample));

    let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_owned();
    let run = |input: &Path, mode: &str, batch: usize, epoch: &str| -> Measured {
        run_variant(
            mode,
            &[
                ("input", path(input)),
                ("batch", batch.to_string()),
                ("epoch", epoch.to_owned()),
                ("cache", path(&cache)),
            ],
        )
    };
    let mut table = Table::on_cpu_time(format!(
        "stay-category over {count} records, native vs WebAssembly, one process each"
    ));
    let native = run(&input, "native", 0, "-");
    table.row("native Rust", Some(&native), None);
    for epoch in ["on", "off"] {
        for batch in BATCHES {
            let measured = run(&input, "wasm", batch, epoch);
            let name = wasm_row(batch, epoch);
            table.row_time_vs(&name, &measured, "native Rust");
        }
    }
    let native_empty = run(&empty, "native", 0, "-");
    let wasm_empty = run(&empty, "wasm", 1_000, "on");
    table.row_time_vs("native Rust, {}", &native_empty, "native Rust");
    table.row_time_vs(
        "wasm, batches of 1000, epoch on, {}",
        &wasm_empty,
        "native Rust",
    );
    for batch in &BATCHES[1..] {
        let name = wasm_row(*batch, "on");
        let time_ratio = table.ratio("native Rust", &name);
        table.target_ratio(&format!("{name} time vs native"), time_ratio, 1.3, true);
    }
    table.print();
    let per_record = |m: &Measured| m.cpu_seconds * 1e6 / m.records as f64;
    println!(
        "\nthe boundary alone ({{}} values, batches of 1,000): {:.3} CPU-µs per record; \
         stay-category's native work: {:.3} CPU-µs per record",
        per_record(&wasm_empty) - per_record(&native_empty),
        per_record(&native),
    );
}

fn wasm_row(batch: usize, epoch: &str) -> String {
    if batch == 1 {
        format!("wasm, 1 record per call, epoch {epoch}")
    } else {
        format!("wasm, batches of {batch}, epoch {epoch}")
    }
}

fn records(values: &[Vec<u8>]) -> Vec<KafkaRecord> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| KafkaRecord::from_value("expedia", i as i64, v.clone()))
        .collect()
}

/// A transformer of its own runtime: epoch interruption is an engine-wide
/// setting. The component is compiled once per setting and the run's processes
/// load it from `cache` (the cache key tells the two settings apart).
fn transformer(epoch_interruption: bool, cache: &Path) -> Transformer {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        epoch_interruption,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let transform = runtime
        .load("stay-category", &sluice_tests::guest("stay-category"))
        .expect("load guest");
    transform
        .transformer(
            Limits {
                deadline: Duration::from_secs(60),
                ..Limits::default()
            },
            Arc::default(),
        )
        .expect("transformer")
}

fn variant(child: &Child) {
    let values = bench::read_frames(&child.path("input"));
    let bytes: usize = values.iter().map(Vec::len).sum();
    let records = records(&values);
    drop(values);
    let mut watch = Stopwatch::default();
    match child.variant.as_str() {
        "native" => watch.time(|| {
            let mut produced = 0usize;
            for record in &records {
                let value = stay_rules::enrich(record.value.as_deref().unwrap_or_default());
                produced += value.map_or(0, |v| v.len());
            }
            std::hint::black_box(produced);
        }),
        "wasm" => {
            let mut transformer = transformer(child.arg("epoch") == "on", &child.path("cache"));
            // The first call instantiates the component: not what is measured.
            transformer.process(&records[..1]);
            watch.time(|| {
                for chunk in records.chunks(child.number("batch")) {
                    std::hint::black_box(transformer.process(chunk));
                }
            });
        }
        other => panic!("no variant {other}"),
    }
    child.report(
        records.len() as u64,
        bytes as u64,
        records.len() as u64,
        &watch,
    );
}
