//! Hot-swap time while a worker processes a continuous stream, in two
//! settings measured in one run:
//!
//! - one instance uploads and runs (one artifact folder): from the start
//!   of an upload request (with activation) to the first output record
//!   stamped with the new version; median of 10 swaps between two Rust
//!   components; the target is 3 s.
//! - the worker is another instance than the uploader (an artifact folder
//!   of its own, emptied before each activation, so that each is the
//!   version's first load there): from the activation to the first record
//!   stamped with the new version, with the registry polled every 500 ms
//!   as `sluice enrich` does; Python components (19-26 MiB) swapped, the
//!   worker compiling each version itself (shared artifacts off, as before
//!   they were shared) beside the worker loading the registry's artifact,
//!   on a local folder and on Azurite. Before the swaps, one load of each
//!   component on a fresh instance, compiled and from the artifact. The
//!   target for a Python version is 1 s after activation.
//!
//! `cargo bench -p sluice-tests --bench swap_time` (needs the broker and
//! Azurite from `scripts/services.sh up` and `scripts/build-guests.sh`).
//! Under `cargo test --all-targets` it makes two swaps in the first
//! setting and one per variant of the second, with the Rust components.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use sluice_host::enrich::{PipelineDefinition, TransformRef};
use sluice_host::kafka::{
    GroupConsumer, GroupStart, KafkaConfig, ProduceRecord, Producer, ensure_topic,
};
use sluice_host::pipeline::header;
use sluice_host::registry::{Registry, TransformWatch};
use sluice_host::runtime::{CacheOutcome, Runtime, RuntimeConfig, content_hash};
use sluice_host::storage::AzureCredentials;
use sluice_tests::{EnrichWorker, azurite, azurite_url, broker, fresh_topic, guest};

/// How often the worker looks at the registry: `sluice enrich`'s default.
const POLL: Duration = Duration::from_millis(500);

type Io = tokio::runtime::Runtime;

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = broker();
    one_instance(&io, &config, if benchmarking { 10 } else { 2 });
    another_instance(&io, &config, benchmarking);
}

/// The upload and the worker on one instance, timed from the upload.
fn one_instance(io: &Io, config: &KafkaConfig, swaps: usize) {
    let dir = tempfile::tempdir().unwrap();
    // One artifact cache, so the worker loads what the upload already
    // compiled.
    let runtime = runtime(&dir.path().join("artifacts"));
    let registry = Arc::new(local_registry(&dir.path().join("registry")));
    let components = [
        Bytes::from(guest("misbehave")),
        Bytes::from(guest("language-detect")),
    ];
    io.block_on(registry.upload(&runtime, "swap", components[0].clone(), true))
        .unwrap();
    let mut run = Streaming::start(config, &registry, &runtime, 50, 20);

    let mut times = Vec::new();
    for swap in 0..swaps {
        let wasm = components[(swap + 1) % 2].clone();
        let started = Instant::now();
        let version = io
            .block_on(registry.upload(&runtime, "swap", wasm, true))
            .unwrap()
            .info
            .version;
        let uploaded = started.elapsed();
        let seen = run.first_stamped(&version, started);
        println!(
            "swap {:>2}: upload {:>6.0} ms, first new record after {:>6.0} ms",
            swap + 1,
            ms(uploaded),
            ms(seen)
        );
        times.push(seen);
        std::thread::sleep(Duration::from_millis(300));
    }
    let processed = run.stop();
    let (median, max) = median_max(&mut times);
    println!(
        "{} swaps while streaming ({processed} records processed): median {:.0} ms, max {:.0} ms (registry polled every {} ms)",
        times.len(),
        ms(median),
        ms(max),
        POLL.as_millis()
    );
    target("a swap, median", median, Duration::from_secs(3));
}

/// Where a variant's registry is kept.
#[derive(Clone, Copy)]
enum Store {
    Local,
    Azurite,
}

/// The worker on an instance of its own: compiling each version itself,
/// or loading the registry's artifact.
fn another_instance(io: &Io, config: &KafkaConfig, benchmarking: bool) {
    let (guests, swaps) = if benchmarking {
        (["language-detect-py", "misbehave-py"], 6)
    } else {
        (["language-detect", "misbehave"], 1)
    };
    let components = guests.map(|name| Bytes::from(guest(name)));
    let dir = tempfile::tempdir().unwrap();
    // The uploader keeps its artifacts across variants: what each upload
    // costs it is not measured here.
    let uploader = runtime(&dir.path().join("uploader"));

    println!();
    println!("a version's first load on another instance (one load each):");
    let registry = local_registry(&dir.path().join("loads"));
    let without = local_registry(&dir.path().join("loads")).with_shared_artifacts(false);
    for (name, wasm) in guests.iter().zip(&components) {
        let version = content_hash(wasm);
        io.block_on(registry.upload(&uploader, "load", wasm.clone(), false))
            .unwrap();
        let load = |registry: &Registry, expected: CacheOutcome| {
            let disk = tempfile::tempdir().unwrap();
            let instance = runtime(disk.path());
            let started = Instant::now();
            let loaded = io
                .block_on(registry.load(&instance, "load", &version))
                .unwrap();
            let took = started.elapsed();
            assert_eq!(loaded.cache_outcome(), expected);
            took
        };
        let compiled = load(&without, CacheOutcome::Compiled);
        let shared = load(&registry, CacheOutcome::Shared);
        println!(
            "  {name:<20} {:>5.1} MiB: compiled {:>7.0} ms, from the registry's artifact {:>5.0} ms ({:.0}x)",
            wasm.len() as f64 / f64::from(1 << 20),
            ms(compiled),
            ms(shared),
            compiled.as_secs_f64() / shared.as_secs_f64()
        );
    }

    println!();
    println!(
        "{} swaps per variant between {} on a worker of its own, from the activation (registry polled every {} ms):",
        swaps,
        guests.join(" and "),
        POLL.as_millis()
    );
    let variants = [
        (
            "worker compiles (shared artifacts off)",
            Store::Local,
            false,
        ),
        ("registry's artifact, local folder", Store::Local, true),
        ("registry's artifact, Azurite", Store::Azurite, true),
    ];
    let mut medians = Vec::new();
    for (label, store, share) in variants {
        let mut times =
            swaps_on_another_instance(io, config, &uploader, &components, swaps, store, share);
        let (median, max) = median_max(&mut times);
        let each: Vec<String> = times.iter().map(|t| format!("{:.0}", ms(*t))).collect();
        println!(
            "  {label:<40} median {:>6.0} ms, max {:>6.0} ms   ({} ms)",
            ms(median),
            ms(max),
            each.join(", ")
        );
        medians.push((label, median));
    }
    for (label, median) in medians {
        target(
            &format!("live after activation, median, {label}"),
            median,
            Duration::from_secs(1),
        );
    }
    // Compiling takes every core: figures from a busy machine are longer.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at the end: {}", load.trim());
    }
}

/// Prints whether `got` is within `goal`.
fn target(what: &str, got: Duration, goal: Duration) {
    let verdict = if got <= goal { "met" } else { "NOT met" };
    println!(
        "target: {what} <= {:.0} ms: {:.0} ms: {verdict}",
        ms(goal),
        ms(got)
    );
}

fn swaps_on_another_instance(
    io: &Io,
    config: &KafkaConfig,
    uploader: &Runtime,
    components: &[Bytes; 2],
    swaps: usize,
    store: Store,
    share: bool,
) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let url = match store {
        Store::Local => dir.path().join("registry").to_string_lossy().into_owned(),
        Store::Azurite => azurite_url("swap", "registry"),
    };
    // The uploader and the worker each open the registry, as two instances
    // do: a store's HTTP connections belong to the runtime that made them,
    // and the worker's would otherwise wait on the uploader's, which runs
    // only while it uploads.
    let open = || {
        Registry::open(&url, &azurite::credentials())
            .unwrap()
            .with_shared_artifacts(share)
    };
    let registry = open();
    io.block_on(registry.upload(uploader, "swap", Bytes::from(guest("misbehave")), true))
        .unwrap();
    let worker_disk = dir.path().join("worker");
    let worker = runtime(&worker_disk);
    let mut run = Streaming::start(config, &Arc::new(open()), &worker, 100, 100);

    let mut times = Vec::new();
    for swap in 0..swaps {
        let wasm = components[swap % 2].clone();
        let version = io
            .block_on(registry.upload(uploader, "swap", wasm, false))
            .unwrap()
            .info
            .version;
        // The version's first load on this instance.
        for entry in std::fs::read_dir(&worker_disk).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let activated = Instant::now();
        io.block_on(registry.activate("swap", &version)).unwrap();
        times.push(run.first_stamped(&version, activated));
        std::thread::sleep(Duration::from_millis(500));
    }
    run.stop();
    times
}

/// A worker on `runtime` following `registry`'s `swap` transform over a
/// steady stream (`records` every `every_ms`), and a reader of its output.
struct Streaming {
    worker: EnrichWorker,
    streaming: Arc<AtomicBool>,
    producer: JoinHandle<()>,
    reader: GroupConsumer,
}

impl Streaming {
    fn start(
        config: &KafkaConfig,
        registry: &Arc<Registry>,
        runtime: &Runtime,
        records: u64,
        every_ms: u64,
    ) -> Self {
        let (input, output, dead_letter) = (
            fresh_topic("swap-in"),
            fresh_topic("swap-out"),
            fresh_topic("swap-dlq"),
        );
        for topic in [&input, &output, &dead_letter] {
            ensure_topic(config, topic, 1).unwrap();
        }
        let definition = PipelineDefinition::from_value(&json!({
            "name": fresh_topic("swap"), "inputs": [input], "outputs": [output],
            "dead_letter": dead_letter, "transform": "swap", "batch_size": 100,
        }))
        .unwrap();
        // On the host's I/O runtime, where the worker's watch runs.
        let transform = {
            let (registry, runtime) = (registry.clone(), runtime.clone());
            sluice_host::io::wait(async move {
                registry
                    .resolve(&runtime, &TransformRef::Active("swap".into()))
                    .await
            })
            .unwrap()
        };
        let watch = TransformWatch::spawn(
            registry.clone(),
            runtime.clone(),
            "swap".into(),
            transform.version().to_owned(),
            POLL,
        );
        let worker = EnrichWorker::start(&definition, transform, Some(watch));
        let streaming = Arc::new(AtomicBool::new(true));
        let producer = {
            let (config, input, streaming) = (config.clone(), input.clone(), streaming.clone());
            std::thread::spawn(move || {
                let producer = Producer::new(&config).unwrap();
                let mut id = 0u64;
                while streaming.load(Ordering::SeqCst) {
                    let batch: Vec<ProduceRecord> = (0..records)
                        .map(|_| {
                            id += 1;
                            ProduceRecord {
                                timestamp: None,
                                topic: input.clone(),
                                partition: Some(0),
                                key: None,
                                value: Some(json!({"id": id, "content": {"text": "a steady stream of english words"}}).to_string().into_bytes()),
                                headers: Vec::new(),
                            }
                        })
                        .collect();
                    producer.send_all(&batch).unwrap();
                    std::thread::sleep(Duration::from_millis(every_ms));
                }
            })
        };
        let reader = GroupConsumer::subscribe(
            config,
            &fresh_topic("swap-reader"),
            std::slice::from_ref(&output),
            GroupStart::Latest,
        )
        .unwrap();
        std::thread::sleep(Duration::from_secs(2));
        Streaming {
            worker,
            streaming,
            producer,
            reader,
        }
    }

    /// The time from `since` to the first output record stamped with
    /// `version`.
    fn first_stamped(&mut self, version: &str, since: Instant) -> Duration {
        let stamp = format!("swap@{}", &version[..12]);
        loop {
            let polled = self.reader.poll(1000, Duration::from_millis(20));
            let found = polled.records.iter().any(|r| {
                r.headers.iter().any(|h| {
                    h.key == header::TRANSFORM && h.value.as_deref() == Some(stamp.as_bytes())
                })
            });
            if found {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < Duration::from_secs(120),
                "version {stamp} never seen"
            );
        }
    }

    /// Stops the stream and the worker: the records it processed.
    fn stop(self) -> u64 {
        self.streaming.store(false, Ordering::SeqCst);
        self.producer.join().unwrap();
        self.worker.stop().read
    }
}

fn runtime(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn local_registry(dir: &Path) -> Registry {
    Registry::open(dir.to_str().unwrap(), &AzureCredentials::default()).unwrap()
}

fn median_max(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[times.len() - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
