//! The per-instance state a guest sees through its imports: the `host`
//! interface of `wit/` and a WASI context that grants nothing.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView,
};

use super::bindings::{Level, host_api, v2};
use super::limits::MemoryLimiter;
use super::stderr::StderrTail;

/// Read-only pipeline metadata handed to guests (the workers' `metadatas`).
pub type Metadata = Arc<Vec<(String, String)>>;

/// Guest panics are printed to stderr; keep the tail so a trap can say why.
const STDERR_CAPTURE_BYTES: usize = 2048;

pub struct GuestState {
    transform: Arc<str>,
    metadata: Metadata,
    pub(super) limiter: MemoryLimiter,
    stderr: StderrTail,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl GuestState {
    pub fn new(transform: Arc<str>, metadata: Metadata, memory_cap: usize) -> Self {
        let stderr = StderrTail::new(STDERR_CAPTURE_BYTES);
        // No preopens, environment, arguments or sockets. Clocks and random
        // numbers are fixed so that the same input always gives the same
        // output, and a re-run rewrites identical files.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FixedClock)
            .monotonic_clock(FixedClock)
            .secure_random(Deterministic::new(vec![0x5a; 32]))
            .insecure_random(Deterministic::new(vec![0xa5; 32]))
            .insecure_random_seed(0)
            .build();
        GuestState {
            transform,
            metadata,
            limiter: MemoryLimiter::new(memory_cap),
            stderr,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// The end of what the guest wrote to stderr: a panic message, usually.
    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host_api::Host for GuestState {
    fn log(&mut self, level: Level, message: String) {
        self.write_log(level, message);
    }

    fn metadata(&mut self) -> Vec<(String, String)> {
        self.metadata.as_ref().clone()
    }
}

/// The same `host` interface, as `sluice:transform@0.2.0` spells it.
impl v2::host_api::Host for GuestState {
    fn log(&mut self, level: v2::Level, message: String) {
        let level = match level {
            v2::Level::Trace => Level::Trace,
            v2::Level::Debug => Level::Debug,
            v2::Level::Info => Level::Info,
            v2::Level::Warn => Level::Warn,
            v2::Level::Error => Level::Error,
        };
        self.write_log(level, message);
    }

    fn metadata(&mut self) -> Vec<(String, String)> {
        self.metadata.as_ref().clone()
    }
}

impl GuestState {
    fn write_log(&self, level: Level, message: String) {
        let transform = &*self.transform;
        match level {
            Level::Trace => tracing::trace!(transform, "{message}"),
            Level::Debug => tracing::debug!(transform, "{message}"),
            Level::Info => tracing::info!(transform, "{message}"),
            Level::Warn => tracing::warn!(transform, "{message}"),
            Level::Error => tracing::error!(transform, "{message}"),
        }
    }
}

/// A clock stopped at the Unix epoch.
struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}
