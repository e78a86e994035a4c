//! Per-call limits for a guest: how much memory it may hold and how long one
//! call may run. Mirrors what a user sets on a pipeline (`limits`).

use std::time::Duration;

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
