//! Precompiled artifacts: checked before wasmtime deserializes them, on
//! this machine's disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::{CacheOutcome, Limits, Runtime, RuntimeConfig, Transform};
use sluice_tests::guest;

/// A runtime of its own over the artifact folder `cache`: a new process,
/// or another instance when the folder is another.
fn instance(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// The `.cwasm` files in `dir`.
fn artifacts_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    found.sort();
    found
}

/// The misbehave guest echoes a record it is not told to do anything with.
fn echoes(transform: &Arc<Transform>) {
    let mut transformer = transform
        .transformer(Limits::default(), Arc::default())
        .unwrap();
    let out = transformer.process(&[KafkaRecord::from_value("t", 0, br#"{"id":7}"#.to_vec())]);
    assert!(
        matches!(&out[..], [Ok(Outcome::Emit(emitted))] if emitted.len() == 1),
        "the loaded transform runs: {out:?}"
    );
}

/// A byte changed in the middle of an artifact on disk (where wasmtime's own
/// header checks do not look) was deserialized and run as it was.
#[test]
fn a_damaged_artifact_on_disk_is_refused_and_compiled_again() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let cache = tempfile::tempdir().unwrap();
    let wasm = guest("misbehave");
    let first = instance(cache.path()).load("misbehave", &wasm).unwrap();
    assert_eq!(first.cache_outcome(), CacheOutcome::Compiled);
    let [path] = &artifacts_in(cache.path())[..] else {
        panic!("one artifact written");
    };
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(path, &bytes).unwrap();

    let again = instance(cache.path()).load("misbehave", &wasm).unwrap();
    assert_eq!(again.cache_outcome(), CacheOutcome::Compiled);
    echoes(&again);
    let third = instance(cache.path()).load("misbehave", &wasm).unwrap();
    assert_eq!(
        third.cache_outcome(),
        CacheOutcome::Hit,
        "the damaged file was replaced"
    );
    echoes(&third);
}
