//! Runs user transforms: WebAssembly components implementing the
//! `transformer` or `aggregator` world of `wit/`.
//!
//! One [`Runtime`] per process holds the engine (pooling allocator, epoch
//! interruption), the linker and the precompiled-artifact cache. Loading a
//! component gives a [`Transform`]; from it come [`Transformer`]s and
//! [`Aggregator`]s, each owning one instance that is reused across batches
//! and replaced after a failure.

mod aggregator;
/// The host side of `wit/`, generated in the leaf `record` module.
pub use crate::record::wit as bindings;
mod cache;
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
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::{HasSelf, InstancePre, Linker};

pub use aggregator::Aggregator;
pub use cache::{CacheOutcome, content_hash};
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
    /// Granularity of deadlines: how often the epoch advances.
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

/// The process-wide WebAssembly runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<GuestState>,
    cache: ArtifactCache,
    epoch_tick: Duration,
    _ticker: Option<EpochTicker>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(&config)?;
        let mut linker = Linker::new(&engine);
        let link_error = |e: wasmtime::Error| RuntimeError::Engine(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_error)?;
        bindings::host_api::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)
            .map_err(link_error)?;
        let cache = ArtifactCache::new(&engine, config.cache_dir.clone());
        let ticker = config
            .epoch_interruption
            .then(|| EpochTicker::start(engine.clone(), config.epoch_tick));
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                epoch_tick: config.epoch_tick,
                _ticker: ticker,
            }),
        })
    }

    /// Compiles (or loads from the cache) a component and checks its world.
    pub fn load(&self, name: &str, wasm: &[u8]) -> Result<Arc<Transform>, RuntimeError> {
        let inner = &self.inner;
        let version = content_hash(wasm);
        let (component, cache) = inner.cache.load(&inner.engine, name, &version, wasm)?;
        let pre =
            inner
                .linker
                .instantiate_pre(&component)
                .map_err(|e| RuntimeError::WrongWorld {
                    transform: name.to_owned(),
                    reason: format!("{e:#}"),
                })?;
        let pre = TransformPre::new(name, pre)?;
        tracing::info!(
            transform = name,
            version = &version[..12],
            world = %pre.world(),
            cache = ?cache,
            "transform loaded"
        );
        Ok(Arc::new(Transform {
            name: name.into(),
            version,
            cache,
            pre,
            epoch_tick: inner.epoch_tick,
            _runtime: self.clone(),
        }))
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

/// Epochs to allow for `deadline`: rounded up, plus one because the current
/// epoch may be about to end when the call starts.
fn engine_ticks(deadline: Duration, tick: Duration) -> u64 {
    let tick = tick.as_nanos().max(1);
    (deadline.as_nanos().div_ceil(tick) as u64).saturating_add(1)
}

enum TransformPre {
    Transformer(bindings::transformer::TransformerPre<GuestState>),
    Aggregator(bindings::aggregator::AggregatorPre<GuestState>),
}

impl TransformPre {
    fn new(name: &str, pre: InstancePre<GuestState>) -> Result<Self, RuntimeError> {
        let as_transformer = match bindings::transformer::TransformerPre::new(pre.clone()) {
            Ok(t) => return Ok(TransformPre::Transformer(t)),
            Err(e) => e,
        };
        match bindings::aggregator::AggregatorPre::new(pre) {
            Ok(a) => Ok(TransformPre::Aggregator(a)),
            Err(as_aggregator) => Err(RuntimeError::WrongWorld {
                transform: name.to_owned(),
                reason: format!(
                    "as a transformer: {as_transformer:#}; as an aggregator: {as_aggregator:#}"
                ),
            }),
        }
    }

    fn world(&self) -> World {
        match self {
            TransformPre::Transformer(_) => World::Transformer,
            TransformPre::Aggregator(_) => World::Aggregator,
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
    /// Keeps the engine's epoch thread alive as long as the transform:
    /// without it, deadlines would never fire.
    _runtime: Runtime,
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

    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    pub fn transformer(
        self: &Arc<Self>,
        limits: Limits,
        metadata: Metadata,
    ) -> Result<Transformer, RuntimeError> {
        match &self.pre {
            TransformPre::Transformer(_) => Ok(Transformer::new(self.clone(), limits, metadata)),
            TransformPre::Aggregator(_) => Err(self.unexpected(World::Transformer)),
        }
    }

    /// A fresh aggregator: one per window, since it holds the window's state.
    pub fn aggregator(
        self: &Arc<Self>,
        limits: Limits,
        metadata: Metadata,
    ) -> Result<Aggregator, RuntimeError> {
        match &self.pre {
            TransformPre::Aggregator(_) => Ok(Aggregator::new(self.clone(), limits, metadata)),
            TransformPre::Transformer(_) => Err(self.unexpected(World::Aggregator)),
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
