//! The one wasmtime engine a process needs, and the thread that drives its
//! epoch clock so that deadlines can interrupt a running guest.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy,
};

use super::RuntimeConfig;
use super::error::RuntimeError;

pub fn build_engine(config: &RuntimeConfig) -> Result<Engine, RuntimeError> {
    let mut pool = PoolingAllocationConfig::default();
    // A component built by rustc for wasm32-wasip2 is a handful of core
    // modules (the program plus WASI adapter shims), each with a memory or
    // table of its own.
    pool.total_component_instances(config.max_instances)
        .total_core_instances(config.max_instances * 8)
        .total_memories(config.max_instances * 2)
        .total_tables(config.max_instances * 4)
        .total_stacks(config.max_instances)
        .max_memory_size(config.max_memory_bytes);

    let mut wasm = Config::new();
    wasm.epoch_interruption(config.epoch_interruption)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // For profiling guests: `SLUICE_PERF_MAP=1` has wasmtime write
    // /tmp/perf-<pid>.map, so that `perf report` names guest functions.
    if std::env::var_os("SLUICE_PERF_MAP").is_some() {
        wasm.profiler(ProfilingStrategy::PerfMap);
    }
    Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

/// Advances the engine's epoch every `tick`; stops when dropped.
pub struct EpochTicker {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine, tick: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("could not start the epoch thread: guest deadlines will not fire");
        }
        EpochTicker {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
