//! stay-category over 1,000,000 generated bookings: native Rust, and the
//! WebAssembly component in batches of 100, 1,000 and 10,000, built
//! against each version of the contract side by side (`stay-category-v01`,
//! `sluice:transform@0.1.0`: a batch as a list of records;
//! `stay-category`, 0.2.0: a batch as flat buffers read through the SDK's
//! views), with epoch interruption on (as in production: it is what lets a
//! deadline stop a looping guest) and off (to show what its checks cost).
//! Then the same calls on `{}` values: what crossing the boundary costs
//! when there is almost nothing to parse, before (0.1.0) and after (0.2.0).
//! Each variant runs in a process of its own; native and WebAssembly (both
//! versions, both settings) must give the same bytes for every record.
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

const BATCHES: [usize; 3] = [100, 1_000, 10_000];

/// The component built against each version of the contract.
const GUESTS: [(&str, &str); 2] = [("0.1.0", "stay-category-v01"), ("0.2.0", "stay-category")];

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
    for (epoch, (contract, guest)) in [true, false]
        .into_iter()
        .flat_map(|e| GUESTS.map(|g| (e, g)))
    {
        let wasm: Vec<Vec<u8>> = transformer(guest, epoch, &cache)
            .process(&sample)
            .into_iter()
            .map(|o| match o {
                Ok(Outcome::Emit(mut out)) => out.remove(0).value.unwrap_or_default(),
                other => panic!("unexpected outcome {other:?}"),
            })
            .collect();
        assert!(
            native == wasm,
            "native and WebAssembly ({contract}, epoch interruption {epoch}) disagree"
        );
    }
    eprintln!("native and WebAssembly agree on {} records", sample.len());
    drop((values, sample));

    let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_owned();
    let run = |input: &Path, mode: &str, guest: &str, batch: usize, epoch: &str| -> Measured {
        run_variant(
            mode,
            &[
                ("input", path(input)),
                ("guest", guest.to_owned()),
                ("batch", batch.to_string()),
                ("epoch", epoch.to_owned()),
                ("cache", path(&cache)),
            ],
        )
    };
    let mut table = Table::on_cpu_time(format!(
        "stay-category over {count} records, native vs WebAssembly, one process each"
    ));
    let native = run(&input, "native", "-", 0, "-");
    table.row("native Rust", Some(&native), None);
    for epoch in ["on", "off"] {
        for (contract, guest) in GUESTS {
            for batch in BATCHES {
                let measured = run(&input, "wasm", guest, batch, epoch);
                table.row_time_vs(&wasm_row(contract, batch, epoch), &measured, "native Rust");
            }
        }
    }
    let native_empty = run(&empty, "native", "-", 0, "-");
    table.row_time_vs("native Rust, {}", &native_empty, "native Rust");
    let mut boundary = Vec::new();
    for (contract, guest) in GUESTS {
        let measured = run(&empty, "wasm", guest, 1_000, "on");
        let name = format!("{}, {{}}", wasm_row(contract, 1_000, "on"));
        table.row_time_vs(&name, &measured, "native Rust");
        boundary.push((contract, measured));
    }
    for batch in BATCHES {
        let name = wasm_row("0.2.0", batch, "on");
        let time_ratio = table.ratio("native Rust", &name);
        table.target_ratio(&format!("{name} time vs native"), time_ratio, 1.3, true);
    }
    table.print();
    let per_record = |m: &Measured| m.cpu_seconds * 1e6 / m.records as f64;
    println!(
        "\nstay-category's native work: {:.3} CPU-µs per record",
        per_record(&native)
    );
    for (contract, measured) in &boundary {
        println!(
            "the boundary alone, sluice:transform@{contract} ({{}} values, batches of 1,000, \
             epoch on): {:.3} CPU-µs per record",
            per_record(measured) - per_record(&native_empty),
        );
    }
}

fn wasm_row(contract: &str, batch: usize, epoch: &str) -> String {
    format!("wasm {contract}, batches of {batch}, epoch {epoch}")
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
fn transformer(guest: &str, epoch_interruption: bool, cache: &Path) -> Transformer {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        epoch_interruption,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let transform = runtime
        .load(guest, &sluice_tests::guest(guest))
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
            let mut transformer = transformer(
                child.arg("guest"),
                child.arg("epoch") == "on",
                &child.path("cache"),
            );
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
