//! Precompiled artifacts: checked before wasmtime deserializes them, on
//! this machine's disk and in the registry, where a version is compiled
//! once per engine configuration and loaded by every other instance; on a
//! local folder and on Azurite.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use bytes::Bytes;
use sluice_host::enrich::TransformRef;
use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::registry::Registry;
use sluice_host::runtime::{CacheOutcome, Limits, Runtime, RuntimeConfig, Transform};
use sluice_host::storage::{AzureCredentials, Store};
use sluice_tests::{azurite, azurite_url, block_on, guest, host_log};

/// A runtime of its own over the artifact folder `cache`: a new process,
/// or another instance when the folder is another.
fn instance(cache: &Path) -> Runtime {
    configured(cache, true)
}

/// As [`instance`], with guests compiled to check the epoch or not: two
/// engine configurations whose code differs.
fn configured(cache: &Path, epoch_interruption: bool) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        max_instances: 4,
        epoch_interruption,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// Another instance, with nothing on its disk yet.
struct Fresh {
    runtime: Runtime,
    _disk: tempfile::TempDir,
}

fn fresh() -> Fresh {
    fresh_configured(true)
}

fn fresh_configured(epoch_interruption: bool) -> Fresh {
    let disk = tempfile::tempdir().unwrap();
    Fresh {
        runtime: configured(disk.path(), epoch_interruption),
        _disk: disk,
    }
}

/// Where a registry is kept, opened as instances open it, with its store
/// for the test to look into and damage.
struct Backend {
    name: &'static str,
    url: String,
    credentials: AzureCredentials,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn all() -> Vec<Backend> {
        let dir = tempfile::tempdir().unwrap();
        vec![
            Backend {
                name: "local",
                url: dir.path().join("registry").to_string_lossy().into_owned(),
                credentials: AzureCredentials::default(),
                _dir: Some(dir),
            },
            Backend {
                name: "azurite",
                url: azurite_url("artifacts", "registry"),
                credentials: azurite::credentials(),
                _dir: None,
            },
        ]
    }

    /// The registry as an instance opens it.
    fn registry(&self) -> Registry {
        Registry::open(&self.url, &self.credentials).unwrap()
    }

    fn store(&self) -> Store {
        Store::open(&self.url, &self.credentials).unwrap()
    }

    /// The keys of `name`'s shared artifacts.
    fn artifacts(&self, name: &str) -> Vec<String> {
        block_on(
            self.store()
                .list_all(&format!("transforms/{name}/artifacts")),
        )
        .unwrap()
        .into_iter()
        .map(|entry| entry.key)
        .filter(|key| key.ends_with(".cwasm"))
        .collect()
    }

    /// The one shared artifact of `name`.
    fn artifact(&self, name: &str) -> String {
        match &self.artifacts(name)[..] {
            [key] => key.clone(),
            other => panic!("{}: one artifact of {name} expected: {other:?}", self.name),
        }
    }

    fn get(&self, key: &str) -> Bytes {
        block_on(self.store().get(key)).unwrap()
    }

    fn put(&self, key: &str, bytes: Bytes) {
        block_on(self.store().put(key, bytes)).unwrap()
    }
}

/// `name`'s active version, loaded by `runtime` through `registry`.
fn active(registry: &Registry, runtime: &Runtime, name: &str) -> Arc<Transform> {
    block_on(registry.resolve(runtime, &TransformRef::Active(name.into()))).unwrap()
}

/// `name`'s active version loaded by `runtime` through `backend`'s
/// registry, checked to come `from` where it should: an artifact (compiling
/// nothing) or a compile (once).
fn loaded_from(
    backend: &Backend,
    runtime: &Runtime,
    name: &str,
    from: CacheOutcome,
    case: &str,
) -> Arc<Transform> {
    let loaded = active(&backend.registry(), runtime, name);
    assert_eq!(loaded.cache_outcome(), from, "{case}");
    let compiles = u64::from(from == CacheOutcome::Compiled);
    assert_eq!(runtime.compiles(), compiles, "{case}: compiles");
    loaded
}

fn upload(registry: &Registry, runtime: &Runtime, name: &str, guest_name: &str) -> String {
    block_on(registry.upload(runtime, name, Bytes::from(guest(guest_name)), true))
        .unwrap()
        .info
        .version
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
    host_log();
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

#[test]
fn an_uploaded_version_is_compiled_once_and_loaded_by_every_other_instance() {
    for backend in Backend::all() {
        let registry = backend.registry();
        let uploader = fresh();
        let version = upload(&registry, &uploader.runtime, "shared", "misbehave");
        assert_eq!(uploader.runtime.compiles(), 1, "{}", backend.name);
        let key = backend.artifact("shared");
        assert!(key.contains(&version), "{key}");

        let disk = tempfile::tempdir().unwrap();
        let worker = instance(disk.path());
        let loaded = loaded_from(
            &backend,
            &worker,
            "shared",
            CacheOutcome::Shared,
            backend.name,
        );
        assert_eq!(loaded.version(), version);
        echoes(&loaded);

        // The same instance started again finds the artifact on its disk.
        let restarted = instance(disk.path());
        loaded_from(
            &backend,
            &restarted,
            "shared",
            CacheOutcome::Hit,
            backend.name,
        );

        let other = fresh();
        loaded_from(
            &backend,
            &other.runtime,
            "shared",
            CacheOutcome::Shared,
            backend.name,
        );
        assert_eq!(backend.artifacts("shared").len(), 1, "{}", backend.name);
    }
}

/// A version stored without an artifact (by a registry with sharing off, or
/// before artifacts were shared) is compiled by the first instance that
/// loads it, and by no other.
#[test]
fn the_first_instance_to_load_a_version_without_an_artifact_compiles_and_shares_it() {
    for backend in Backend::all() {
        let without = backend.registry().with_shared_artifacts(false);
        let uploader = fresh();
        upload(&without, &uploader.runtime, "late", "misbehave");
        assert!(backend.artifacts("late").is_empty(), "{}", backend.name);

        let first = fresh();
        loaded_from(
            &backend,
            &first.runtime,
            "late",
            CacheOutcome::Compiled,
            backend.name,
        );
        backend.artifact("late");

        let second = fresh();
        let loaded = loaded_from(
            &backend,
            &second.runtime,
            "late",
            CacheOutcome::Shared,
            backend.name,
        );
        echoes(&loaded);

        // With sharing off an instance neither reads nor writes them.
        let apart = fresh();
        let loaded = active(&without, &apart.runtime, "late");
        assert_eq!(loaded.cache_outcome(), CacheOutcome::Compiled);
    }
}

/// What a damaged object in the registry can be: each is refused, compiled
/// again, and replaced by a good artifact the next instance loads.
#[test]
fn a_damaged_shared_artifact_is_refused_compiled_again_and_replaced() {
    type Damage = fn(&Backend, &str) -> Bytes;
    let damages: [(&str, Damage); 5] = [
        ("a byte changed in its code", |backend, key| {
            let mut bytes = backend.get(key).to_vec();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x55;
            Bytes::from(bytes)
        }),
        ("cut in half", |backend, key| {
            let bytes = backend.get(key);
            bytes.slice(..bytes.len() / 2)
        }),
        ("empty", |_, _| Bytes::new()),
        ("wasmtime's bytes without the header", |backend, key| {
            backend.get(key).slice(112..)
        }),
        ("another component's artifact", |backend, _| {
            let registry = backend.registry();
            let other = fresh();
            upload(&registry, &other.runtime, "another", "language-detect");
            backend.get(&backend.artifact("another"))
        }),
    ];
    for backend in Backend::all() {
        for (damage, make) in damages {
            let name = "damaged";
            let registry = backend.registry();
            let uploader = fresh();
            // A version of its own for each case: the guest's bytes with a
            // custom section naming the case.
            let wasm = with_custom_section(&guest("misbehave"), damage);
            let version = block_on(registry.upload(&uploader.runtime, name, wasm, true))
                .unwrap()
                .info
                .version;
            let key = backend
                .artifacts(name)
                .into_iter()
                .find(|key| key.contains(&version))
                .unwrap();
            let bad = make(&backend, &key);
            backend.put(&key, bad.clone());

            let instance = fresh();
            let case = format!("{}, {damage}", backend.name);
            let loaded = loaded_from(
                &backend,
                &instance.runtime,
                name,
                CacheOutcome::Compiled,
                &case,
            );
            assert_eq!(loaded.version(), version, "{case}");
            echoes(&loaded);
            assert!(backend.get(&key) != bad, "{case}: replaced");

            let next = fresh();
            loaded_from(&backend, &next.runtime, name, CacheOutcome::Shared, &case);
        }
    }
}

/// `wasm` with a custom section `sluice-test` holding `text`: another
/// version of the same component (custom sections do not change what runs).
fn with_custom_section(wasm: &[u8], text: &str) -> Bytes {
    let name = b"sluice-test";
    let mut payload = leb128(name.len());
    payload.extend_from_slice(name);
    payload.extend_from_slice(text.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0);
    out.extend(leb128(payload.len()));
    out.extend(payload);
    Bytes::from(out)
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[test]
fn an_artifact_of_another_engine_configuration_is_not_loaded() {
    for backend in Backend::all() {
        let uploader = fresh_configured(true);
        let version = upload(
            &backend.registry(),
            &uploader.runtime,
            "engines",
            "misbehave",
        );
        let theirs = backend.artifact("engines");

        let other = fresh_configured(false);
        let loaded = loaded_from(
            &backend,
            &other.runtime,
            "engines",
            CacheOutcome::Compiled,
            backend.name,
        );
        echoes(&loaded);
        let keys = backend.artifacts("engines");
        assert_eq!(keys.len(), 2, "{}: one per engine: {keys:?}", backend.name);
        let ours = keys.into_iter().find(|key| *key != theirs).unwrap();
        assert!(ours.contains(&version) && ours.contains(&other.runtime.engine_key().to_string()));

        // The other engine's artifact stored under this engine's name.
        backend.put(&ours, backend.get(&theirs));
        let misled = fresh_configured(false);
        loaded_from(
            &backend,
            &misled.runtime,
            "engines",
            CacheOutcome::Compiled,
            backend.name,
        );
        assert!(backend.get(&ours) != backend.get(&theirs), "replaced");
        let next = fresh_configured(false);
        loaded_from(
            &backend,
            &next.runtime,
            "engines",
            CacheOutcome::Shared,
            backend.name,
        );
    }
}

/// Instances that find no artifact and compile at once each try to store
/// theirs: one is stored, whole, and the others leave it be (counted in the
/// log: one "shared" line; an overwrite would leave identical bytes). A
/// round in which fewer than two compiled did not race and is run again.
#[test]
fn instances_compiling_at_once_leave_one_valid_artifact() {
    const INSTANCES: usize = 4;
    host_log();
    for backend in Backend::all() {
        let mut raced = false;
        for round in 0..5 {
            let name = format!("race-{}-{round}", backend.name);
            let without = backend.registry().with_shared_artifacts(false);
            upload(&without, &fresh().runtime, &name, "language-detect");
            let instances: Vec<Fresh> = (0..INSTANCES).map(|_| fresh()).collect();
            let start = Barrier::new(INSTANCES);
            let compiles: u64 = std::thread::scope(|scope| {
                let loading: Vec<_> = instances
                    .iter()
                    .map(|instance| {
                        let (backend, start, name) = (&backend, &start, &name);
                        scope.spawn(move || {
                            let registry = backend.registry();
                            start.wait();
                            let loaded = active(&registry, &instance.runtime, name);
                            assert_eq!(loaded.world(), sluice_host::runtime::World::Transformer);
                            instance.runtime.compiles()
                        })
                    })
                    .collect();
                loading.into_iter().map(|t| t.join().unwrap()).sum()
            });
            backend.artifact(&name);
            let next = fresh();
            loaded_from(
                &backend,
                &next.runtime,
                &name,
                CacheOutcome::Shared,
                backend.name,
            );
            let shared = host_log()
                .text()
                .lines()
                .filter(|line| line.contains("precompiled artifact shared") && line.contains(&name))
                .count();
            assert_eq!(shared, 1, "{}: one instance stored it", backend.name);
            eprintln!(
                "{}: round {round}, {compiles} of {INSTANCES} compiled",
                backend.name
            );
            if compiles >= 2 {
                raced = true;
                break;
            }
        }
        assert!(raced, "{}: the instances never raced", backend.name);
    }
}

/// A component object whose bytes are not its version (damaged in the
/// store) was loaded and run under the version asked for.
#[test]
fn a_damaged_component_in_the_registry_is_an_error_naming_it() {
    for backend in Backend::all() {
        let without = backend.registry().with_shared_artifacts(false);
        let version = upload(&without, &fresh().runtime, "broken", "misbehave");
        let key = format!("transforms/broken/blobs/{version}.wasm");
        let other = with_custom_section(&backend.get(&key), "damage");
        backend.put(&key, other);
        let error = block_on(without.load(&fresh().runtime, "broken", &version))
            .err()
            .expect("a damaged component is not loaded");
        let message = error.to_string();
        assert!(
            message.contains(&key) && message.contains("damaged"),
            "{}: {message}",
            backend.name
        );
    }
}
