//! Python transforms against Rust ones, measured side by side in one run:
//! records/s of the stay-category rules as the Rust guest, as the Python
//! guest (stay_category_py) in WebAssembly and as the same Python code in
//! CPython outside WebAssembly (tests/benches/cpython_guest.py: the same SDK
//! and app over batches laid out as the host lays them out); component
//! sizes; first load (compile) and cached load of each component. Every
//! mode's output is checked against the Rust guest's before anything is
//! timed, and each mode is timed three times, the best round kept (the
//! machine is shared). Target: the Python guest at 0.7x or more of the
//! same code's records/s in CPython.
//!
//! `cargo bench -p sluice-tests --bench python_guests [-- RECORDS]` (needs
//! `scripts/build-guests.sh` first). Under `cargo test` (no `--bench`) it is
//! a quick check on 2,000 records that loads through a cache kept in the
//! target folder, so that it compiles a Python component once, not per run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_host::generate::{ExpediaGenerator, StayMix};
use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::{CacheOutcome, Limits, Runtime, RuntimeConfig, Transform, content_hash};
use sluice_tests::{guest, guests_dir};

const BATCH: usize = 1_000;
/// Timed rounds per mode; the best is kept.
const ROUNDS: usize = 3;
/// The Python guest's records/s as a share of the same code's in CPython.
const PYTHON_TARGET: f64 = 0.7;

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benchmarking { 200_000 } else { 2_000 });
    let target = guests_dir()
        .ancestors()
        .nth(2)
        .expect("guests live in <target>/wasm32-wasip2/guest")
        .to_owned();

    println!("\ncomponent sizes\n");
    for name in [
        "stay-category",
        "stay-category-py",
        "stay-category-js",
        "stay-summary-py",
        "language-detect",
        "language-detect-py",
    ] {
        let bytes = guest(name).len();
        println!("{name:<22} {:>8.1} MiB", bytes as f64 / (1 << 20) as f64);
    }

    // First load: a fresh cache folder, so the component is compiled and
    // its artifact written; cached load: a new runtime (a new process, as
    // far as the engine knows) reading that artifact.
    let persistent = target.join("python-guests").join("bench-artifacts");
    let scratch = tempfile::tempdir().expect("temporary folder");
    let cache = if benchmarking {
        scratch.path()
    } else {
        keep_only_current(
            &persistent,
            &["stay-category", "stay-category-py", "stay-category-js"],
        );
        persistent.as_path()
    };
    println!("\nloading (cache in {})\n", cache.display());
    println!(
        "{:<22} {:>12} {:>12} {:>16}",
        "component", "first load", "cached load", "first outcome"
    );
    let rust = load_twice("stay-category", cache);
    let python = load_twice("stay-category-py", cache);
    let javascript = load_twice("stay-category-js", cache);

    eprintln!("generating {count} bookings...");
    let records: Vec<KafkaRecord> = ExpediaGenerator::new(1, StayMix::default())
        .take(count)
        .enumerate()
        .map(|(i, v)| KafkaRecord::from_value("expedia", i as i64, v.to_string().into_bytes()))
        .collect();

    // Correctness before speed: all three agree with the Rust guest.
    let sample = &records[..count.min(if benchmarking { 10_000 } else { count })];
    let expected = normalised(&emitted(&rust, sample));
    assert_eq!(
        normalised(&emitted(&python, sample)),
        expected,
        "stay_category_py in WebAssembly disagrees with the Rust guest"
    );
    // JavaScript writes 1234.0 as 1234: compared as numbers.
    let js_sample: Vec<Value> = emitted(&javascript, sample)
        .iter()
        .map(|v| serde_json::from_slice(v).unwrap_or(Value::Null))
        .collect();
    for (js, expected) in js_sample.iter().zip(&expected) {
        let expected: Value = serde_json::from_str(expected).unwrap_or(Value::Null);
        assert!(
            same_numbers(js, &expected),
            "stay_category_js disagrees with the Rust guest: {js} != {expected}"
        );
    }
    let values = target.join("python-guests").join("bench-input.jsonl");
    write_values(&values, sample);
    let cpython_out = values.with_extension("cpython-out");
    let cpython_sample = cpython(&target, &values, Some(&cpython_out));
    let cpython_values: Vec<Vec<u8>> = std::fs::read(&cpython_out)
        .expect("CPython output")
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(
        normalised(&cpython_values),
        expected,
        "stay_category_py in CPython disagrees with the Rust guest"
    );
    assert_eq!(cpython_sample.0, sample.len());

    let native = best_of(|| {
        time(|| {
            for record in &records {
                std::hint::black_box(stay_rules::enrich(
                    record.value.as_deref().unwrap_or_default(),
                ))
                .ok();
            }
        })
    });
    let rust_wasm = throughput(&rust, &records);
    let python_wasm = throughput(&python, &records);
    let javascript_wasm = throughput(&javascript, &records);
    // The same calls on `{}` values: what the boundary and the SDK cost per
    // record when there is almost nothing to parse.
    let empty: Vec<KafkaRecord> = records
        .iter()
        .map(|r| KafkaRecord {
            value: Some(b"{}".to_vec()),
            ..r.clone()
        })
        .collect();
    let python_empty = throughput(&python, &empty);
    write_values(&values, &empty);
    let (_, cpython_empty) = cpython(&target, &values, None);
    write_values(&values, &records);
    let (processed, cpython_time) = cpython(&target, &values, None);
    assert_eq!(processed, count);

    println!("\nstay-category over {count} records, batches of {BATCH}\n");
    println!(
        "{:<34} {:>12} {:>10} {:>12} {:>12}",
        "mode", "records/s", "µs/record", "vs CPython", "vs Rust wasm"
    );
    for (mode, elapsed) in [
        ("native Rust (stay-rules)", native),
        ("Rust guest, wasm", rust_wasm),
        ("Python guest, wasm (py 3.14)", python_wasm),
        ("same Python, CPython 3.11 native", cpython_time),
        ("JavaScript guest, wasm", javascript_wasm),
        ("Python guest, wasm, {} values", python_empty),
        ("CPython 3.11 native, {} values", cpython_empty),
    ] {
        println!(
            "{mode:<34} {:>12.0} {:>10.2} {:>11.2}x {:>11.2}x",
            count as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / count as f64,
            cpython_time.as_secs_f64() / elapsed.as_secs_f64(),
            rust_wasm.as_secs_f64() / elapsed.as_secs_f64(),
        );
    }
    println!("(the last two columns: throughput relative to CPython and to the Rust guest)");
    let ratio = cpython_time.as_secs_f64() / python_wasm.as_secs_f64();
    println!(
        "\ntarget: the Python guest at >= {PYTHON_TARGET}x the same code in CPython: {ratio:.2}x, {}",
        if ratio >= PYTHON_TARGET {
            "met"
        } else {
            "not met"
        }
    );
    println!(
        "per record on {{}} values: Python guest {:.2} µs, CPython {:.2} µs",
        python_empty.as_secs_f64() * 1e6 / count as f64,
        cpython_empty.as_secs_f64() * 1e6 / count as f64,
    );
}

/// The best of [`ROUNDS`] timings.
fn best_of(mut run: impl FnMut() -> Duration) -> Duration {
    (0..ROUNDS).map(|_| run()).min().unwrap_or_default()
}

/// Loads `name` into a new runtime twice over the cache folder `cache` and
/// prints the times; returns the transform loaded from the cache.
fn load_twice(name: &str, cache: &Path) -> Arc<Transform> {
    let wasm = guest(name);
    let config = || RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        ..RuntimeConfig::default()
    };
    let started = Instant::now();
    let first = Runtime::new(config())
        .expect("runtime")
        .load(name, &wasm)
        .expect("load");
    let first_load = started.elapsed();
    let started = Instant::now();
    let cached = Runtime::new(config())
        .expect("runtime")
        .load(name, &wasm)
        .expect("load");
    let cached_load = started.elapsed();
    assert_eq!(cached.cache_outcome(), CacheOutcome::Hit);
    // The first call instantiates: the component's memory snapshot is
    // mapped and its start-up code runs.
    let started = Instant::now();
    let one = [KafkaRecord::from_value("expedia", 0, b"{}".to_vec())];
    assert!(matches!(
        transformer(&cached).process(&one)[0],
        Ok(Outcome::Emit(_))
    ));
    let first_outcome = started.elapsed();
    let compiled = match first.cache_outcome() {
        CacheOutcome::Compiled => format!("{:.2} s", first_load.as_secs_f64()),
        CacheOutcome::Hit | CacheOutcome::Shared => "(cached)".to_owned(),
    };
    println!(
        "{name:<22} {compiled:>12} {:>9.1} ms {:>13.1} ms",
        cached_load.as_secs_f64() * 1e3,
        first_outcome.as_secs_f64() * 1e3
    );
    cached
}

/// Equal JSON values, numbers compared as numbers.
fn same_numbers(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_numbers(va, vb))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// Removes the artifacts of earlier builds from the smoke run's cache, so
/// that it holds two components' worth, not one per build ever tested.
fn keep_only_current(cache: &Path, guests: &[&str]) {
    let current: Vec<String> = guests.iter().map(|g| content_hash(&guest(g))).collect();
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !current.iter().any(|hash| name.starts_with(hash.as_str())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn transformer(transform: &Arc<Transform>) -> sluice_host::runtime::Transformer {
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

/// The first emitted value of each record ("-" when none).
fn emitted(transform: &Arc<Transform>, records: &[KafkaRecord]) -> Vec<Vec<u8>> {
    let mut transformer = transformer(transform);
    records
        .chunks(BATCH)
        .flat_map(|chunk| transformer.process(chunk))
        .map(|outcome| match outcome {
            Ok(Outcome::Emit(mut out)) => out.remove(0).value.unwrap_or_default(),
            _ => b"-".to_vec(),
        })
        .collect()
}

/// Values re-serialised by serde_json: field order kept, numbers written
/// one way (Python writes `1.50` as `1.5`).
fn normalised(values: &[Vec<u8>]) -> Vec<String> {
    values
        .iter()
        .map(|v| match serde_json::from_slice::<Value>(v) {
            Ok(value) => value.to_string(),
            Err(_) => String::from_utf8_lossy(v).into_owned(),
        })
        .collect()
}

fn throughput(transform: &Arc<Transform>, records: &[KafkaRecord]) -> Duration {
    let mut transformer = transformer(transform);
    std::hint::black_box(transformer.process(&records[..records.len().min(BATCH)]));
    best_of(|| {
        time(|| {
            for chunk in records.chunks(BATCH) {
                std::hint::black_box(transformer.process(chunk));
            }
        })
    })
}

fn write_values(path: &Path, records: &[KafkaRecord]) {
    let mut text = Vec::new();
    for record in records {
        text.extend_from_slice(record.value.as_deref().unwrap_or_default());
        text.push(b'\n');
    }
    std::fs::write(path, text).expect("write the input file");
}

/// Runs stay_category_py's code in CPython over the values in `input`:
/// records processed and the time spent in `process` (the best of
/// [`ROUNDS`] passes).
fn cpython(target: &Path, input: &Path, output: Option<&Path>) -> (usize, Duration) {
    let work = target.join("python-guests");
    let python = std::env::var_os("SLUICE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sluice")))
        .map(|cache| cache.join("componentize-py/bin/python"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"));
    let mut command = Command::new(&python);
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/cpython_guest.py"
        ))
        .arg(work.join("bindings/transformer"))
        .arg(work.join("stay_category_py/src"))
        .arg(input)
        .arg(BATCH.to_string())
        .arg(ROUNDS.to_string());
    if let Some(output) = output {
        command.arg(output);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "CPython run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    (
        report["records"].as_u64().expect("records") as usize,
        Duration::from_secs_f64(report["seconds"].as_f64().expect("seconds")),
    )
}

fn time(run: impl FnOnce()) -> Duration {
    let started = Instant::now();
    run();
    started.elapsed()
}
