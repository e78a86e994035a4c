//! The one wasmtime engine a process needs, and the thread that advances its
//! epoch so that deadlines can interrupt a running guest.
//!
//! The epoch advances only when a guest call is due, not on every tick: a
//! worker spends most of its time outside the guest (polling, producing,
//! idle), and a thread woken every 10 ms for nothing cost it 5% of its CPU.
//! Each call is armed with a deadline on the tick grid (the tick it would
//! have ended on had the epoch advanced every tick, so no call is cut off
//! sooner or later than before) and tells the ticker; the ticker sleeps
//! until the earliest deadline it was told of, then advances the epoch
//! once. Every guest running at that moment is then stopped at its next
//! epoch check and asked, through the store's epoch callback, whether its
//! own deadline has passed: if so it traps, if not it tells the ticker its
//! deadline again and goes on. So the ticker needs to remember only the
//! earliest deadline: a later one it forgot is told again by its guest
//! when the epoch advances, if that guest is still running.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// Advances the engine's epoch when an armed deadline is due; stops when
/// dropped.
pub struct EpochTicker {
    clock: Arc<Clock>,
    thread: Option<JoinHandle<()>>,
}

/// What the ticker and the guests' deadlines share.
struct Clock {
    engine: Engine,
    tick: Duration,
    /// Tick 0: deadlines fall on `origin + n * tick`.
    origin: Instant,
    next: Mutex<Next>,
    wake: Condvar,
}

#[derive(Default)]
struct Next {
    /// The earliest deadline told since the epoch last advanced.
    due: Option<Instant>,
    stop: bool,
}

impl EpochTicker {
    pub fn start(engine: Engine, tick: Duration) -> Self {
        let clock = Arc::new(Clock {
            engine,
            tick: tick.max(Duration::from_nanos(1)),
            origin: Instant::now(),
            next: Mutex::new(Next::default()),
            wake: Condvar::new(),
        });
        let thread = {
            let clock = clock.clone();
            std::thread::Builder::new()
                .name("sluice-epoch".into())
                .spawn(move || clock.run())
                .ok()
        };
        if thread.is_none() {
            tracing::error!("could not start the epoch thread: guest deadlines will not fire");
        }
        EpochTicker { clock, thread }
    }

    /// The deadline `ticks` ticks from now (as the epoch counted them when
    /// it advanced every tick), told to the ticker. The caller sets the
    /// store's epoch deadline to the next advance *before* this, so that an
    /// advance between the two cannot pass the call by.
    pub fn arm(&self, ticks: u64) -> Deadline {
        let clock = &self.clock;
        let tick_nanos = clock.tick.as_nanos();
        let now = clock.origin.elapsed().as_nanos() / tick_nanos;
        let due_nanos = (now + u128::from(ticks)).saturating_mul(tick_nanos);
        // `None`: further away than the clock can say, so never due.
        let due = clock.origin.checked_add(Duration::from_nanos(
            u64::try_from(due_nanos).unwrap_or(u64::MAX),
        ));
        let deadline = Deadline {
            clock: clock.clone(),
            due,
        };
        deadline.tell();
        deadline
    }
}

impl Clock {
    fn lock(&self) -> MutexGuard<'_, Next> {
        // Nothing in `Next` can be left half-written by a panic.
        self.next.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The ticker thread: sleeps until the earliest deadline told, advances
    /// the epoch, and sleeps until told of another.
    fn run(&self) {
        let mut next = self.lock();
        loop {
            if next.stop {
                return;
            }
            next = match next.due {
                None => self.wake.wait(next).unwrap_or_else(PoisonError::into_inner),
                Some(due) => match due.checked_duration_since(Instant::now()) {
                    Some(wait) if !wait.is_zero() => {
                        self.wake
                            .wait_timeout(next, wait)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0
                    }
                    _ => {
                        next.due = None;
                        drop(next);
                        self.engine.increment_epoch();
                        self.lock()
                    }
                },
            };
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.clock.lock().stop = true;
        self.clock.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One guest call's deadline, for its store's epoch callback.
pub struct Deadline {
    clock: Arc<Clock>,
    due: Option<Instant>,
}

impl Deadline {
    pub fn passed(&self) -> bool {
        self.due.is_some_and(|due| Instant::now() >= due)
    }

    /// Tells the ticker, which wakes earlier if this is the earliest.
    pub fn tell(&self) {
        let Some(due) = self.due else {
            return;
        };
        let mut next = self.clock.lock();
        if next.due.is_none_or(|earliest| due < earliest) {
            next.due = Some(due);
            self.clock.wake.notify_one();
        }
    }
}
