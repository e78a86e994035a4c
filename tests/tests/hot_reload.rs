//! Hot reload: a running enrichment worker follows the registry's active
//! version, switching between batches, with no input record lost, skipped
//! or repeated across the switch; to the Rust language-detect guest and to
//! its Python port, uploaded the same way, which the worker loads
//! precompiled from the registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_host::enrich::{PipelineDefinition, TransformRef};
use sluice_host::kafka::{ProduceRecord, Producer, ensure_topic};
use sluice_host::pipeline::header;
use sluice_host::registry::{Registry, TransformWatch};
use sluice_host::runtime::{Runtime, RuntimeConfig};
use sluice_host::storage::AzureCredentials;
use sluice_tests::{
    EnrichWorker, block_on, broker, fresh_topic, guest, header_text, ids, read_all, runtime,
};

/// The two tests take turns: compiling the Python component takes every
/// core for a while, and the other test's switch is timed.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_running_worker_switches_to_a_newly_activated_version() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    switches_to(runtime(), runtime(), "language-detect");
}

/// A Python component is uploaded, checked and activated like any other,
/// and the worker, another instance with a disk of its own, loads the
/// artifact the upload stored instead of compiling. Compiling takes tens
/// of seconds in a debug build (the benchmark measures it in a release
/// build), so the uploader's artifact cache is filled first: what is timed
/// here is the switch, not Cranelift.
#[test]
fn a_running_worker_switches_to_a_newly_activated_python_version() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let instance = |cache: &tempfile::TempDir| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_owned()),
            ..RuntimeConfig::default()
        })
        .unwrap()
    };
    let (uploader_disk, worker_disk) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let uploader = instance(&uploader_disk);
    uploader
        .load("live", &guest("language-detect-py"))
        .expect("the Python component compiles");
    let worker = instance(&worker_disk);
    switches_to(&uploader, &worker, "language-detect-py");
    assert_eq!(worker.compiles(), 0, "the worker compiled nothing");
}

/// Starts a worker (on `worker`) on the misbehave guest (echoing every
/// record), uploads (through `uploader`) and activates `new_guest`
/// mid-stream, and checks the switch.
fn switches_to(uploader: &Runtime, worker: &Runtime, new_guest: &str) {
    /// Records produced every 100 ms, up to a minute of them.
    const SLICE: u64 = 100;
    const MAX_SLICES: u64 = 600;
    let config = broker();
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(
        Registry::open(dir.path().to_str().unwrap(), &AzureCredentials::default()).unwrap(),
    );
    let old = block_on(registry.upload(uploader, "live", Bytes::from(guest("misbehave")), true))
        .unwrap()
        .info
        .version;

    let (input, output, dead_letter) = (
        fresh_topic("reload-in"),
        fresh_topic("reload-out"),
        fresh_topic("reload-dlq"),
    );
    for topic in [&input, &output, &dead_letter] {
        ensure_topic(&config, topic, 1).unwrap();
    }
    let definition = PipelineDefinition::from_value(&json!({
        "name": fresh_topic("reload"), "inputs": [input], "outputs": [output],
        "dead_letter": dead_letter, "transform": "live", "batch_size": 50,
    }))
    .unwrap();
    let transform =
        block_on(registry.resolve(worker, &TransformRef::Active("live".into()))).unwrap();
    let watch = TransformWatch::spawn(
        registry.clone(),
        worker.clone(),
        "live".into(),
        transform.version().to_owned(),
        Duration::from_millis(100),
    );
    let worker = EnrichWorker::start(&definition, transform, Some(watch));

    // Records keep coming until a few slices after the switch is seen: an
    // upload slowed by a loaded machine must not find the input all read
    // by the old version, with nothing left to show the new one.
    let switched = Arc::new(AtomicBool::new(false));
    let producing = {
        let (config, input, switched) = (config.clone(), input.clone(), switched.clone());
        std::thread::spawn(move || {
            let producer = Producer::new(&config).unwrap();
            let (mut slice, mut after_switch) = (0u64, 0);
            while after_switch < 3 && slice < MAX_SLICES {
                let records: Vec<ProduceRecord> = (slice * SLICE..(slice + 1) * SLICE)
                    .map(|id| ProduceRecord {
                        timestamp: None,
                        topic: input.clone(),
                        partition: Some(0),
                        key: None,
                        value: Some(
                            json!({"id": id, "content": {"text": "the quick brown fox jumps over the lazy dog near the river bank"}})
                                .to_string()
                                .into_bytes(),
                        ),
                        headers: Vec::new(),
                    })
                    .collect();
                producer.send_all(&records).unwrap();
                slice += 1;
                if switched.load(Ordering::SeqCst) {
                    after_switch += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            slice * SLICE
        })
    };

    // The new version is uploaded once the old one has produced: a worker
    // slow to join its group on a loaded machine must not see only the new.
    let stamp_old = format!("live@{}", &old[..12]);
    let started = Instant::now();
    while !read_all(&config, &output)
        .iter()
        .any(|r| header_text(r, header::TRANSFORM) == stamp_old)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the old version never produced"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let new = block_on(registry.upload(uploader, "live", Bytes::from(guest(new_guest)), true))
        .unwrap()
        .info
        .version;
    // Timed from the activation: the upload's check (a compile, when the
    // artifact is not cached) is the upload's time, not the switch's.
    let uploaded_at = Instant::now();
    let stamp_new = format!("live@{}", &new[..12]);
    let switched_after = loop {
        let out = read_all(&config, &output);
        if out
            .iter()
            .any(|r| header_text(r, header::TRANSFORM) == stamp_new)
        {
            break uploaded_at.elapsed();
        }
        assert!(
            uploaded_at.elapsed() < Duration::from_secs(30),
            "never switched"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    switched.store(true, Ordering::SeqCst);
    let total = producing.join().unwrap() as usize;
    let start = Instant::now();
    while read_all(&config, &output).len() < total && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    worker.stop();

    let out = read_all(&config, &output);
    let ids = ids(&out);
    assert_eq!(
        ids,
        (0..total as u64).collect::<Vec<_>>(),
        "every record once, in order"
    );
    let stamps: Vec<&str> = out
        .iter()
        .map(|r| header_text(r, header::TRANSFORM))
        .collect();
    let switch = stamps.iter().position(|s| *s == stamp_new).unwrap();
    assert!(switch > 0, "the old version ran first");
    assert!(stamps[..switch].iter().all(|s| *s == stamp_old));
    assert!(
        stamps[switch..].iter().all(|s| *s == stamp_new),
        "no switching back"
    );
    for record in &out[switch..] {
        let value: Value = serde_json::from_slice(record.value.as_deref().unwrap()).unwrap();
        assert_eq!(
            value["content"]["language"], "en",
            "the new version made it"
        );
    }
    assert!(read_all(&config, &dead_letter).is_empty());
    eprintln!(
        "switched {switched_after:?} after the activation; {switch} records before the switch"
    );
    assert!(
        switched_after < Duration::from_secs(15),
        "switch took {switched_after:?}"
    );
}

/// A version that cannot be loaded when it is activated (neither its
/// component nor its artifact is readable yet: a storage hiccup, and the
/// watching instance has none on its disk) is tried again until it loads,
/// instead of the worker keeping the old version until the next activation.
#[test]
fn a_version_that_fails_to_load_is_tried_again() {
    let dir = tempfile::tempdir().unwrap();
    let disk = tempfile::tempdir().unwrap();
    let watching = Runtime::new(RuntimeConfig {
        cache_dir: Some(disk.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let registry = Arc::new(
        Registry::open(dir.path().to_str().unwrap(), &AzureCredentials::default()).unwrap(),
    );
    let old = block_on(registry.upload(runtime(), "retry", Bytes::from(guest("misbehave")), true))
        .unwrap()
        .info
        .version;
    let new = block_on(registry.upload(
        runtime(),
        "retry",
        Bytes::from(guest("stay-category")),
        false,
    ))
    .unwrap()
    .info
    .version;
    let watch = TransformWatch::spawn(
        registry.clone(),
        watching,
        "retry".into(),
        old,
        Duration::from_millis(50),
    );
    let blob = dir
        .path()
        .join(format!("transforms/retry/blobs/{new}.wasm"));
    let aside = dir.path().join("aside.wasm");
    std::fs::rename(&blob, &aside).unwrap();
    let artifacts = dir.path().join("transforms/retry/artifacts");
    std::fs::rename(&artifacts, dir.path().join("artifacts-aside")).unwrap();
    block_on(registry.activate("retry", &new)).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert!(watch.take_update().is_none(), "nothing loadable yet");
    std::fs::rename(&aside, &blob).unwrap();
    let start = Instant::now();
    let loaded = loop {
        if let Some(transform) = watch.take_update() {
            break transform;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the watch never tried again"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(loaded.version(), new);
}
