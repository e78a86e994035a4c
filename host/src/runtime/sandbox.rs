//! One store per live instance, with its limits wired in, and the mapping
//! from a failed call to a [`GuestFailure`] a user can act on.

use wasmtime::{Store, Trap, UpdateDeadline};

use super::error::GuestFailure;
use super::limits::Limits;
use super::state::{GuestState, Metadata};
use super::{Transform, engine_ticks};

pub fn new_store(transform: &Transform, limits: Limits, metadata: Metadata) -> Store<GuestState> {
    let engine = match &transform.pre {
        super::TransformPre::Transformer(pre) => pre.engine(),
        super::TransformPre::TransformerV2(pre) => pre.engine(),
        super::TransformPre::Aggregator(pre) => pre.engine(),
        super::TransformPre::AggregatorV2(pre) => pre.engine(),
    };
    let state = GuestState::new(transform.name.clone(), metadata, limits.memory_bytes);
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.epoch_deadline_trap();
    store
}

/// Arms the deadline for the call about to be made: the store stops at the
/// epoch's next advance and traps if its deadline has passed by then, else
/// tells the ticker its deadline again and goes on (`engine.rs`).
pub fn arm_deadline(store: &mut Store<GuestState>, transform: &Transform, limits: Limits) {
    let ticks = engine_ticks(limits.deadline, transform.epoch_tick);
    let Some(ticker) = &transform.runtime.inner.ticker else {
        // Epoch interruption off: nothing advances the epoch.
        store.set_epoch_deadline(ticks);
        return;
    };
    // Before the ticker hears of the deadline: an advance in between then
    // stops the call early (it goes on), never lets it pass.
    store.set_epoch_deadline(1);
    let deadline = ticker.arm(ticks);
    store.epoch_deadline_callback(move |_| {
        if deadline.passed() {
            return Ok(UpdateDeadline::Interrupt);
        }
        deadline.tell();
        Ok(UpdateDeadline::Continue(1))
    });
}

/// Names what went wrong in a call that returned an error. The store's
/// instance must not be used again afterwards: a trapped instance may be in
/// any state.
pub fn classify(
    store: &mut Store<GuestState>,
    error: wasmtime::Error,
    limits: Limits,
) -> GuestFailure {
    let state = store.data_mut();
    if let Some(refusal) = state.limiter.take_refusal() {
        return GuestFailure::MemoryLimit {
            cap: state.limiter.cap(),
            desired: refusal.desired,
        };
    }
    if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return GuestFailure::Deadline(limits.deadline);
    }
    // The wasm backtrace is long and rarely helps a transform's author more
    // than the panic message does; it goes to the debug log.
    tracing::debug!(error = format!("{error:?}"), "guest trap");
    let cause = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    let stderr = state.stderr_text();
    if stderr.is_empty() {
        GuestFailure::Trap(cause)
    } else {
        GuestFailure::Trap(format!("{cause}; guest stderr: {stderr}"))
    }
}
