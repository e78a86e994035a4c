//! Storing the files a run finishes together: one partition's file after
//! another, against several at once (the default), into a local folder
//! (each file synced to disk), into Azurite, and into a store that answers
//! every request after 30 ms, as a storage account in another region or
//! under load does. Wall-clock time: uploads wait, they do not compute.
//!
//! `cargo bench -p sluice-tests --bench export_upload [-- FILES]`
//! (64 files of 1 MiB, one per partition; 8 under `cargo test
//! --all-targets`; Azurite from `scripts/services.sh up`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::memory::InMemory;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use sluice_host::export::{DEFAULT_UPLOAD_CONCURRENCY, ToStore, WrittenFile, data_key, store_all};
use sluice_host::storage::Storage;
use sluice_tests::bench::{self, Measured, Table};
use sluice_tests::{azurite, azurite_url};

const FILE_BYTES: usize = 1 << 20;
const LATENCY: Duration = Duration::from_millis(30);

/// Opens a fresh, empty storage of one kind.
type OpenStorage<'a> = dyn Fn() -> Storage + 'a;

fn main() {
    let files = bench::count(64, 8);
    let dir = tempfile::tempdir().expect("temp folder");
    let local = tempfile::tempdir().expect("temp folder");
    let slow = || {
        let store = ThrottledStore::new(
            InMemory::new(),
            ThrottleConfig {
                wait_put_per_call: LATENCY,
                ..ThrottleConfig::default()
            },
        );
        Storage::on_object_store("a store with 30 ms per request", Arc::new(store))
    };
    let azure = || {
        let url = azurite_url("upload", "out");
        Storage::open(&url, &azurite::credentials()).expect("Azurite storage")
    };
    let targets: [(&str, Box<OpenStorage>); 3] = [
        (
            "local folder",
            Box::new(|| {
                Storage::open(local.path().to_str().expect("UTF-8"), &Default::default())
                    .expect("local storage")
            }),
        ),
        ("Azurite", Box::new(azure)),
        ("30 ms per request", Box::new(slow)),
    ];
    let mut table = Table::new(format!(
        "storing {files} finished files of {} MiB (one per partition), one at a time \
         vs {DEFAULT_UPLOAD_CONCURRENCY} at once",
        FILE_BYTES >> 20
    ));
    for (name, open) in &targets {
        let one = format!("{name}, one at a time");
        let many = format!("{name}, {DEFAULT_UPLOAD_CONCURRENCY} at once");
        // Interleaved, best of two rounds each: the machine is shared.
        let mut best: [Option<Measured>; 2] = [None, None];
        for _round in 0..2 {
            for (slot, concurrency) in [(0, 1), (1, DEFAULT_UPLOAD_CONCURRENCY)] {
                let measured = run(&open(), dir.path(), files, concurrency);
                if best[slot]
                    .as_ref()
                    .is_none_or(|b| measured.seconds < b.seconds)
                {
                    best[slot] = Some(measured);
                }
            }
        }
        table.row(&one, best[0].as_ref(), None);
        table.row(&many, best[1].as_ref(), Some(&one));
    }
    table.print();
}

/// Stages `files` files and stores them; every one must then be in place.
fn run(storage: &Storage, dir: &Path, files: usize, concurrency: usize) -> Measured {
    let written: Vec<WrittenFile> = (0..files).map(|p| staged(dir, p as i32)).collect();
    let to_store: Vec<ToStore<'_>> = written
        .iter()
        .map(|file| ToStore {
            file,
            had_dead_letters: false,
        })
        .collect();
    let input_rss_kb = bench::peak_rss_kb();
    let cpu = bench::cpu_seconds();
    let started = Instant::now();
    store_all(storage, "bookings", &to_store, concurrency).expect("stored");
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = bench::cpu_seconds() - cpu;
    for file in &written {
        let stored = storage.get(&file.key).expect("stored file");
        assert_eq!(stored.len(), FILE_BYTES, "{}", file.key);
    }
    Measured {
        records: files as u64,
        bytes: (files * FILE_BYTES) as u64,
        outputs: files as u64,
        seconds,
        cpu_seconds,
        peak_rss_kb: bench::peak_rss_kb(),
        input_rss_kb,
        extra: Default::default(),
    }
}

/// A finished file of partition `p`: 1 MiB that does not compress.
fn staged(dir: &Path, p: i32) -> WrittenFile {
    let staging = dir.join(format!("bookings+{p}+0.parquet.partial"));
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ p as u64;
    let bytes: Vec<u8> = (0..FILE_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&staging, bytes).expect("staged file");
    WrittenFile {
        staging,
        key: data_key("bookings", p, 0, 999),
        partition: p,
        first: 0,
        last: 999,
        rows: 1_000,
        bytes: FILE_BYTES as u64,
        dead_lettered: 0,
        dead_letters: None,
        stats: Vec::new(),
        location: None,
        late: 0,
        last_time: None,
    }
}
