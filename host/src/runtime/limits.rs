//! Per-call limits for a guest: how much memory it may hold and how long one
//! call may run; and the [`Budget`] of several calls together. Mirrors what
//! a user sets on a pipeline (`limits`).

use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

/// Limits that apply to every instance of a transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory a guest may grow to, in bytes.
    pub memory_bytes: usize,
    /// Longest a single call (one batch) may run before it is interrupted.
    pub deadline: Duration,
}

impl Default for Limits {
    /// 256 MiB and 10 s: enough for batches of tens of thousands of records,
    /// small enough that a runaway guest cannot starve the host.
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(10),
        }
    }
}

/// How long a run of calls may take together: a batch, and when it fails,
/// its records one at a time. A record that runs past its deadline costs a
/// whole deadline, so without a budget a batch with many of them would run
/// for as many deadlines, past the time its caller has (a consumer's
/// `max.poll.interval.ms`, a function's timeout).
///
/// A record is never judged on less than its full deadline: a call is given
/// the full deadline while the budget holds one, and a shorter one after
/// that only to find records that finish in time; a record cut short by the
/// budget was not tried. The first record is always given its full deadline,
/// so every run makes progress: a run takes at most the budget plus one
/// deadline.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// When the budget is spent; `None` for no budget.
    ends: Option<Instant>,
    /// Whether a call was judged (finished, or failed on its own account).
    progressed: bool,
}

impl Budget {
    /// `length` from now.
    pub fn new(length: Duration) -> Self {
        Budget {
            ends: Instant::now().checked_add(length),
            progressed: false,
        }
    }

    /// No budget: every call gets its full deadline.
    pub fn unlimited() -> Self {
        Budget {
            ends: None,
            progressed: false,
        }
    }

    /// The deadline for the next call, when one may be made: `deadline`
    /// while the budget holds it (or nothing was judged yet), what is left
    /// of the budget after that, nothing once it is spent.
    pub fn allows(&self, deadline: Duration) -> Option<Duration> {
        let Some(ends) = self.ends.filter(|_| self.progressed) else {
            return Some(deadline);
        };
        let left = ends.saturating_duration_since(Instant::now());
        if left.is_zero() {
            None
        } else {
            Some(left.min(deadline))
        }
    }

    /// A call's outcome counts: the run made progress.
    pub fn judged(&mut self) {
        self.progressed = true;
    }
}

/// Refuses memory growth past the cap and remembers that it did, so that the
/// trap that follows (Rust guests abort on allocation failure) is reported as
/// what it is: the memory limit, not an anonymous `unreachable`.
#[derive(Debug)]
pub struct MemoryLimiter {
    cap: usize,
    refused: Option<MemoryRefusal>,
}

/// A growth request the limiter turned down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRefusal {
    pub current: usize,
    pub desired: usize,
}

impl MemoryLimiter {
    pub fn new(cap: usize) -> Self {
        MemoryLimiter { cap, refused: None }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The refusal since the last call to this method, if any.
    pub fn take_refusal(&mut self) -> Option<MemoryRefusal> {
        self.refused.take()
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            tracing::warn!(
                "error.type" = "memory_limit_exceeded",
                current,
                desired,
                cap = self.cap,
                "guest memory growth refused"
            );
            self.refused = Some(MemoryRefusal { current, desired });
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a guest needing a million of them
        // is broken, not busy.
        Ok(desired <= 1 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_millis(200);

    #[test]
    fn the_first_call_gets_its_full_deadline_even_from_a_spent_budget() {
        let mut budget = Budget::new(Duration::ZERO);
        assert_eq!(budget.allows(DEADLINE), Some(DEADLINE), "progress first");
        budget.judged();
        assert_eq!(budget.allows(DEADLINE), None, "then nothing more");
    }

    #[test]
    fn calls_get_the_full_deadline_while_the_budget_holds_one_then_what_is_left() {
        let mut budget = Budget::new(Duration::from_secs(3600));
        budget.judged();
        assert_eq!(budget.allows(DEADLINE), Some(DEADLINE));
        let left = budget
            .allows(Duration::from_secs(7200))
            .expect("some budget left");
        assert!(left <= Duration::from_secs(3600), "{left:?}");
    }

    #[test]
    fn no_budget_always_gives_the_full_deadline() {
        let mut budget = Budget::unlimited();
        budget.judged();
        assert_eq!(budget.allows(DEADLINE), Some(DEADLINE));
    }
}
