//! Runs user transforms: WebAssembly components implementing the
//! `transformer` or `aggregator` world of `wit/`, in either version of the
//! contract: `sluice:transform@0.2.0` (`wit/`, a batch as flat buffers,
//! `columns.rs`) or `sluice:transform@0.1.0` (`wit/v0.1/`, a list of
//! records). Loading finds which one a component exports; the transformer
//! and aggregator call it the same way whichever it is.
//!
//! One [`Runtime`] per process holds the engine (pooling allocator, epoch
//! interruption), the linker and the precompiled-artifact cache. Loading a
//! component gives a [`Transform`]; from it come [`Transformer`]s and
//! [`Aggregator`]s, each owning one instance that is reused across batches
//! and replaced after a failure.
//!
//! A component is compiled only when no checked artifact of it is at hand
//! (`artifact.rs`): this machine's disk first (`cache.rs`), then one
//! another instance compiled and the registry passes in
//! ([`Runtime::load_shared`]).

mod aggregator;
mod artifact;
/// The host side of `wit/`, generated in the leaf `record` module.
pub use crate::record::wit as bindings;
mod cache;
mod columns;
mod engine;
mod error;
mod journal;
mod limits;
mod sandbox;
mod state;
mod stderr;
mod transformer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};

pub use aggregator::Aggregator;
pub use artifact::{Artifact, ComponentHash, EngineKey, Refused};
pub use error::{GuestError, GuestFailure, RuntimeError};
pub use limits::{Budget, Limits};
pub use state::Metadata;
pub use transformer::{RecordResult, Transformer};

use cache::ArtifactCache;
use engine::EpochTicker;
use state::GuestState;

/// How the process-wide runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Folder for precompiled artifacts; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Instances alive at once, across all transforms (pool size).
    pub max_instances: u32,
    /// Upper bound for any guest's memory; [`Limits`] sets each one's cap.
    pub max_memory_bytes: usize,
    /// Granularity of deadlines: the grid they fall on. The epoch advances
    /// only when a running guest call's deadline is due (`engine.rs`).
    pub epoch_tick: Duration,
    /// Whether guests are compiled to check the epoch, so that deadlines
    /// can interrupt them. Always on in production: without it a looping
    /// guest runs forever. Off only to measure what the checks cost
    /// (`tests/benches/stay_category.rs`).
    pub epoch_interruption: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: default_cache_dir(),
            max_instances: 64,
            max_memory_bytes: 4 << 30,
            epoch_tick: Duration::from_millis(10),
            epoch_interruption: true,
        }
    }
}

/// `$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice/artifacts`, else
/// `~/.cache/sluice/artifacts`.
fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SLUICE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("sluice").join("artifacts"))
}

/// The content hash of a component: its version everywhere in Sluice.
pub fn content_hash(wasm: &[u8]) -> String {
    ComponentHash::of(wasm).to_string()
}

/// Where a loaded component's code came from; tests and logs want to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// This machine's precompiled artifact.
    Hit,
    /// An artifact another instance compiled (the registry's).
    Shared,
    /// Compiled now.
    Compiled,
}

impl CacheOutcome {
    /// The name metrics and logs give it.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "disk",
            CacheOutcome::Shared => "shared",
            CacheOutcome::Compiled => "compiled",
        }
    }
}

/// Which world of `wit/` a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    Transformer,
    Aggregator,
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::Transformer => "a transformer",
            World::Aggregator => "an aggregator",
        })
    }
}

/// Which version of the contract in `wit/` a component was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `sluice:transform@0.1.0` (`wit/v0.1/`): a batch as a list of records.
    V0_1,
    /// `sluice:transform@0.2.0` (`wit/`): a batch as flat buffers.
    V0_2,
}

impl Contract {
    /// The package version, as logs and listings show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The process-wide WebAssembly runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    engine_key: EngineKey,
    linker: Linker<GuestState>,
    cache: ArtifactCache,
    /// Components this runtime compiled, for tests to count.
    compiles: AtomicU64,
    epoch_tick: Duration,
    ticker: Option<EpochTicker>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(&config)?;
        let mut linker = Linker::new(&engine);
        let link_error = |e: wasmtime::Error| RuntimeError::Engine(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_error)?;
        bindings::host_api::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)
            .map_err(link_error)?;
        bindings::v2::host_api::add_to_linker::<GuestState, HasSelf<GuestState>>(
            &mut linker,
            |s| s,
        )
        .map_err(link_error)?;
        let cache = ArtifactCache::new(config.cache_dir.clone());
        let ticker = config
            .epoch_interruption
            .then(|| EpochTicker::start(engine.clone(), config.epoch_tick));
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine_key: EngineKey::of(&engine),
                engine,
                linker,
                cache,
                compiles: AtomicU64::new(0),
                epoch_tick: config.epoch_tick,
                ticker,
            }),
        })
    }

    /// Which engines can load this runtime's artifacts: the registry keeps
    /// one artifact per key.
    pub fn engine_key(&self) -> &EngineKey {
        &self.inner.engine_key
    }

    /// How many components this runtime has compiled (rather than loaded
    /// from an artifact).
    pub fn compiles(&self) -> u64 {
        self.inner.compiles.load(Ordering::Relaxed)
    }

    /// Loads a component from this machine's artifact, or compiles it, and
    /// checks its world.
    pub fn load(&self, name: &str, wasm: &[u8]) -> Result<Arc<Transform>, RuntimeError> {
        Ok(self.prepare(name, wasm)?.0)
    }

    /// As [`Runtime::load`], with the checked artifact the transform was
    /// loaded from, for the registry to share with other instances.
    pub fn prepare(
        &self,
        name: &str,
        wasm: &[u8],
    ) -> Result<(Arc<Transform>, Artifact), RuntimeError> {
        let started = Instant::now();
        let component = ComponentHash::of(wasm);
        if let Some(artifact) = self.inner.cache.read(name, &component, self.engine_key())
            && let Some(transform) =
                self.ready(name, component, &artifact, CacheOutcome::Hit, started)?
        {
            return Ok((transform, artifact));
        }
        let artifact = self.compile(name, &component, wasm)?;
        let transform = self.ready(name, component, &artifact, CacheOutcome::Compiled, started)?;
        let transform = transform.ok_or_else(|| RuntimeError::Compile {
            transform: name.to_owned(),
            reason: "the component this engine just compiled does not load".to_owned(),
        })?;
        Ok((transform, artifact))
    }

    /// Loads `version` of `name` from this machine's artifact: `None` when
    /// there is no good one (the caller then finds the component).
    pub fn load_cached(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<Arc<Transform>>, RuntimeError> {
        let started = Instant::now();
        let component = parse_version(name, version)?;
        match self.inner.cache.read(name, &component, self.engine_key()) {
            Some(artifact) => self.ready(name, component, &artifact, CacheOutcome::Hit, started),
            None => Ok(None),
        }
    }

    /// Loads `version` of `name` from the stored artifact `bytes` another
    /// instance compiled, once they check out (`artifact.rs`), and keeps it
    /// on this machine's disk. Refused bytes are an
    /// [`RuntimeError::ArtifactRefused`]: the caller compiles instead.
    pub fn load_shared(
        &self,
        name: &str,
        version: &str,
        bytes: Bytes,
    ) -> Result<Arc<Transform>, RuntimeError> {
        let started = Instant::now();
        let component = parse_version(name, version)?;
        let refused = |reason: String| RuntimeError::ArtifactRefused {
            transform: name.to_owned(),
            reason,
        };
        let artifact = Artifact::open(bytes, &component, self.engine_key())
            .map_err(|refused_as| refused(refused_as.to_string()))?;
        let transform = self
            .ready(name, component, &artifact, CacheOutcome::Shared, started)?
            .ok_or_else(|| refused("wasmtime does not load it".to_owned()))?;
        self.inner
            .cache
            .write(name, &component, self.engine_key(), &artifact);
        Ok(transform)
    }

    /// Compiles `wasm`, keeps the artifact on this machine's disk and gives
    /// it sealed.
    fn compile(
        &self,
        name: &str,
        component: &ComponentHash,
        wasm: &[u8],
    ) -> Result<Artifact, RuntimeError> {
        let inner = &self.inner;
        let compiled =
            inner
                .engine
                .precompile_component(wasm)
                .map_err(|e| RuntimeError::Compile {
                    transform: name.to_owned(),
                    reason: format!("{e:#}"),
                })?;
        inner.compiles.fetch_add(1, Ordering::Relaxed);
        let artifact = Artifact::seal(component, &inner.engine_key, &compiled);
        inner
            .cache
            .write(name, component, &inner.engine_key, &artifact);
        Ok(artifact)
    }

    /// The transform in `artifact`, its world checked; `None` when wasmtime
    /// refuses the artifact itself (logged: the caller compiles instead).
    fn ready(
        &self,
        name: &str,
        component: ComponentHash,
        artifact: &Artifact,
        outcome: CacheOutcome,
        started: Instant,
    ) -> Result<Option<Arc<Transform>>, RuntimeError> {
        let inner = &self.inner;
        let component_code: Component = match artifact.deserialize(&inner.engine) {
            Ok(code) => code,
            Err(e) => {
                tracing::warn!(transform = name, artifact = outcome.as_str(),
                    error = %format!("{e:#}"), "precompiled artifact not loadable; compiling instead");
                return Ok(None);
            }
        };
        let pre = inner.linker.instantiate_pre(&component_code).map_err(|e| {
            RuntimeError::WrongWorld {
                transform: name.to_owned(),
                reason: format!("{e:#}"),
            }
        })?;
        let pre = TransformPre::new(name, pre)?;
        let version = component.to_string();
        let took = started.elapsed();
        crate::metrics::transform_load(name, outcome.as_str(), took);
        tracing::info!(
            transform = name,
            version = &version[..12],
            world = %pre.world(),
            contract = pre.contract().as_str(),
            artifact = outcome.as_str(),
            took_ms = took.as_millis() as u64,
            "transform loaded"
        );
        Ok(Some(Arc::new(Transform {
            name: name.into(),
            version,
            cache: outcome,
            pre,
            epoch_tick: inner.epoch_tick,
            runtime: self.clone(),
        })))
    }

    /// Loads a `.wasm` file; the transform is named after the file stem.
    pub fn load_file(&self, path: &Path) -> Result<Arc<Transform>, RuntimeError> {
        let wasm = std::fs::read(path).map_err(|source| RuntimeError::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_else(|| "transform".to_owned());
        self.load(&name, &wasm)
    }
}

/// `version` as a component hash, or why it is none.
fn parse_version(name: &str, version: &str) -> Result<ComponentHash, RuntimeError> {
    ComponentHash::parse(version).ok_or_else(|| RuntimeError::BadVersion {
        transform: name.to_owned(),
        version: version.chars().take(80).collect(),
    })
}

/// Epochs to allow for `deadline`: rounded up, plus one because the current
/// epoch may be about to end when the call starts.
fn engine_ticks(deadline: Duration, tick: Duration) -> u64 {
    let tick = tick.as_nanos().max(1);
    (deadline.as_nanos().div_ceil(tick) as u64).saturating_add(1)
}

/// A component's pre-instance, for the world and contract version it
/// exports.
enum TransformPre {
    Transformer(bindings::transformer::TransformerPre<GuestState>),
    TransformerV2(bindings::v2::transformer::TransformerPre<GuestState>),
    Aggregator(bindings::aggregator::AggregatorPre<GuestState>),
    AggregatorV2(bindings::v2::aggregator::AggregatorPre<GuestState>),
}

impl TransformPre {
    /// Tries each world of each version, newest first; the error says why
    /// each refused.
    fn new(name: &str, pre: InstancePre<GuestState>) -> Result<Self, RuntimeError> {
        let mut refusals = Vec::with_capacity(4);
        match bindings::v2::transformer::TransformerPre::new(pre.clone()) {
            Ok(t) => return Ok(TransformPre::TransformerV2(t)),
            Err(e) => refusals.push(format!("as a 0.2.0 transformer: {e:#}")),
        }
        match bindings::v2::aggregator::AggregatorPre::new(pre.clone()) {
            Ok(a) => return Ok(TransformPre::AggregatorV2(a)),
            Err(e) => refusals.push(format!("as a 0.2.0 aggregator: {e:#}")),
        }
        match bindings::transformer::TransformerPre::new(pre.clone()) {
            Ok(t) => return Ok(TransformPre::Transformer(t)),
            Err(e) => refusals.push(format!("as a 0.1.0 transformer: {e:#}")),
        }
        match bindings::aggregator::AggregatorPre::new(pre) {
            Ok(a) => Ok(TransformPre::Aggregator(a)),
            Err(e) => {
                refusals.push(format!("as a 0.1.0 aggregator: {e:#}"));
                Err(RuntimeError::WrongWorld {
                    transform: name.to_owned(),
                    reason: refusals.join("; "),
                })
            }
        }
    }

    fn world(&self) -> World {
        match self {
            TransformPre::Transformer(_) | TransformPre::TransformerV2(_) => World::Transformer,
            TransformPre::Aggregator(_) | TransformPre::AggregatorV2(_) => World::Aggregator,
        }
    }

    fn contract(&self) -> Contract {
        match self {
            TransformPre::Transformer(_) | TransformPre::Aggregator(_) => Contract::V0_1,
            TransformPre::TransformerV2(_) | TransformPre::AggregatorV2(_) => Contract::V0_2,
        }
    }
}

/// A loaded, validated component, ready to be instantiated.
pub struct Transform {
    name: Arc<str>,
    version: String,
    cache: CacheOutcome,
    pre: TransformPre,
    epoch_tick: Duration,
    /// Keeps the engine's epoch thread alive as long as the transform
    /// (without it, deadlines would never fire), and tells it each call's
    /// deadline.
    runtime: Runtime,
}

impl Transform {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SHA-256 of the component, in hex.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The first 12 hex digits of the version, for logs and headers.
    pub fn short_version(&self) -> &str {
        &self.version[..12]
    }

    pub fn world(&self) -> World {
        self.pre.world()
    }

    /// Which version of the contract the component was built against.
    pub fn contract(&self) -> Contract {
        self.pre.contract()
    }

    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    pub fn transformer(
        self: &Arc<Self>,
        limits: Limits,
        metadata: Metadata,
    ) -> Result<Transformer, RuntimeError> {
        match self.world() {
            World::Transformer => Ok(Transformer::new(self.clone(), limits, metadata)),
            World::Aggregator => Err(self.unexpected(World::Transformer)),
        }
    }

    /// A fresh aggregator: one per window, since it holds the window's state.
    pub fn aggregator(
        self: &Arc<Self>,
        limits: Limits,
        metadata: Metadata,
    ) -> Result<Aggregator, RuntimeError> {
        match self.world() {
            World::Aggregator => Ok(Aggregator::new(self.clone(), limits, metadata)),
            World::Transformer => Err(self.unexpected(World::Aggregator)),
        }
    }

    fn unexpected(&self, expected: World) -> RuntimeError {
        RuntimeError::UnexpectedWorld {
            transform: self.name.to_string(),
            expected,
            actual: self.world(),
        }
    }

    fn error(
        &self,
        record: Option<&crate::record::KafkaRecord>,
        failure: GuestFailure,
    ) -> GuestError {
        GuestError {
            transform: self.name.to_string(),
            version: self.short_version().to_owned(),
            record: record.map(|r| r.locator()),
            failure,
        }
    }
}
