//! stay-category over 1,000,000 generated bookings: native Rust, WebAssembly
//! one record per call, and WebAssembly in batches. Prints records/s and each
//! mode's time relative to native, all measured in the same run.
//!
//! `cargo bench -p sluice-tests --bench stay_category [-- RECORDS]`
//! (needs `scripts/build-guests.sh` first).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_host::generate::{ExpediaGenerator, StayMix};
use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::{Limits, Transformer};

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // then this is a quick check that native and WebAssembly agree.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benchmarking { 1_000_000 } else { 2_000 });
    eprintln!("generating {count} bookings...");
    let records: Vec<KafkaRecord> = ExpediaGenerator::new(1, StayMix::default())
        .take(count)
        .enumerate()
        .map(|(i, v)| KafkaRecord::from_value("expedia", i as i64, v.to_string().into_bytes()))
        .collect();
    let bytes: usize = records
        .iter()
        .map(|r| r.value.as_ref().map_or(0, Vec::len))
        .sum();
    eprintln!(
        "{count} records, {:.0} bytes on average",
        bytes as f64 / count as f64
    );

    let transform = sluice_tests::transform("stay-category");
    let new_transformer = || -> Transformer {
        transform
            .transformer(
                Limits {
                    deadline: Duration::from_secs(60),
                    ..Limits::default()
                },
                Arc::default(),
            )
            .expect("transformer")
    };

    // Warm up both sides and check they agree before timing anything.
    let sample = &records[..count.min(1000)];
    let native_sample: Vec<Vec<u8>> = sample
        .iter()
        .map(|r| stay_rules::enrich(r.value.as_deref().unwrap_or_default()).expect("native"))
        .collect();
    let wasm_sample: Vec<Vec<u8>> = new_transformer()
        .process(sample)
        .into_iter()
        .map(|o| match o {
            Ok(Outcome::Emit(mut out)) => out.remove(0).value.unwrap_or_default(),
            other => panic!("unexpected outcome {other:?}"),
        })
        .collect();
    assert_eq!(
        native_sample, wasm_sample,
        "native and WebAssembly disagree"
    );

    let mut rows = Vec::new();
    let native = time(|| {
        let mut produced = 0usize;
        for record in &records {
            let value = stay_rules::enrich(record.value.as_deref().unwrap_or_default());
            produced += value.map_or(0, |v| v.len());
        }
        std::hint::black_box(produced);
    });
    rows.push(("native Rust".to_owned(), native));

    let mut transformer = new_transformer();
    let per_record = time(|| {
        for record in &records {
            std::hint::black_box(transformer.process(std::slice::from_ref(record)));
        }
    });
    rows.push(("wasm, 1 record per call".to_owned(), per_record));

    for batch in [100, 1_000, 10_000] {
        let mut transformer = new_transformer();
        let elapsed = time(|| {
            for chunk in records.chunks(batch) {
                std::hint::black_box(transformer.process(chunk));
            }
        });
        rows.push((format!("wasm, batches of {batch}"), elapsed));
    }

    // The same calls on `{}` values: what crossing the boundary costs per
    // record when there is almost nothing to parse.
    let empty: Vec<KafkaRecord> = records
        .iter()
        .map(|r| KafkaRecord {
            value: Some(b"{}".to_vec()),
            ..r.clone()
        })
        .collect();
    let mut transformer = new_transformer();
    let boundary = time(|| {
        for chunk in empty.chunks(1_000) {
            std::hint::black_box(transformer.process(chunk));
        }
    });
    rows.push(("wasm, batches of 1000, {}".to_owned(), boundary));
    let native_empty = time(|| {
        for record in &empty {
            std::hint::black_box(
                stay_rules::enrich(record.value.as_deref().unwrap_or_default()).ok(),
            );
        }
    });
    rows.push(("native Rust, {}".to_owned(), native_empty));

    println!("\nstay-category over {count} records\n");
    println!(
        "{:<28} {:>14} {:>10} {:>10} {:>16}",
        "mode", "records/s", "seconds", "µs/record", "time vs native"
    );
    for (mode, elapsed) in &rows {
        println!(
            "{mode:<28} {:>14.0} {:>10.3} {:>10.3} {:>15.2}x",
            count as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / count as f64,
            elapsed.as_secs_f64() / native.as_secs_f64()
        );
    }
}

fn time(run: impl FnOnce()) -> Duration {
    let started = Instant::now();
    run();
    started.elapsed()
}
