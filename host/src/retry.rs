//! The one retry policy for transient failures (a registry answering 503,
//! a store timing out, a broker's queue full): exponential backoff with
//! jitter, a bounded number of retries, through `backon`. Callers say what
//! is transient; everything else is returned at once. Delays are part of
//! the policy value, so a test passes a short one instead of production
//! code asking whether it runs under test.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, BlockingRetryable, ExponentialBuilder, Retryable};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait; each next one doubles, with jitter.
    pub first: Duration,
    /// No single wait is longer.
    pub max: Duration,
    /// Retries after the first attempt.
    pub retries: usize,
}

impl Backoff {
    /// A service on the network (the schema registry, the object store):
    /// 0.2 s, 0.4 s, ... up to 5 s, seven retries, about 15 s of waiting in
    /// all: long enough for a restart or a failover, short enough that a
    /// run fails while its caller is still waiting for it.
    pub const NETWORK: Backoff = Backoff {
        first: Duration::from_millis(200),
        max: Duration::from_secs(5),
        retries: 7,
    };

    /// No waiting at all: for tests that want the outcome of the last
    /// attempt at once.
    pub const NONE: Backoff = Backoff {
        first: Duration::ZERO,
        max: Duration::ZERO,
        retries: 0,
    };

    fn builder(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.first)
            .with_max_delay(self.max.max(self.first))
            .with_max_times(self.retries)
            .with_jitter()
    }

    /// The waits this policy makes, in order (jitter included).
    pub fn delays(self) -> impl Iterator<Item = Duration> {
        self.builder().build()
    }

    /// Calls `op` until it succeeds, fails with an error `transient` does
    /// not accept, or the retries are used up; the last error is returned.
    /// Each retry is logged with `what` and the error.
    pub fn blocking<T, E: Display>(
        &self,
        what: &str,
        op: impl FnMut() -> Result<T, E>,
        transient: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        op.retry(self.builder())
            .sleep(std::thread::sleep)
            .when(transient)
            .notify(|error, wait| {
                tracing::warn!(what, %error, wait_ms = wait.as_millis() as u64, "retrying");
            })
            .call()
    }

    /// [`Self::blocking`] for async operations (on the host's I/O runtime).
    pub async fn run<T, E: Display, F: Future<Output = Result<T, E>>>(
        &self,
        what: &str,
        op: impl FnMut() -> F,
        transient: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        op.retry(self.builder())
            .sleep(tokio::time::sleep)
            .when(transient)
            .notify(|error, wait| {
                tracing::warn!(what, %error, wait_ms = wait.as_millis() as u64, "retrying");
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const FAST: Backoff = Backoff {
        first: Duration::from_millis(1),
        max: Duration::from_millis(2),
        retries: 3,
    };

    #[test]
    fn a_transient_error_is_retried_until_it_passes() {
        let calls = Cell::new(0);
        let outcome = FAST.blocking(
            "test",
            || {
                calls.set(calls.get() + 1);
                if calls.get() < 3 { Err("busy") } else { Ok(7) }
            },
            |_| true,
        );
        assert_eq!(outcome, Ok(7));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn retries_are_bounded_and_the_last_error_is_returned() {
        let calls = Cell::new(0);
        let outcome: Result<(), String> = FAST.blocking(
            "test",
            || {
                calls.set(calls.get() + 1);
                Err(format!("failure {}", calls.get()))
            },
            |_| true,
        );
        assert_eq!(outcome, Err("failure 4".to_owned()));
        assert_eq!(calls.get(), 1 + FAST.retries);
    }

    #[test]
    fn a_definitive_error_is_returned_at_once() {
        let calls = Cell::new(0);
        let outcome: Result<(), &str> = FAST.blocking(
            "test",
            || {
                calls.set(calls.get() + 1);
                Err("not found")
            },
            |e| *e != "not found",
        );
        assert_eq!(outcome, Err("not found"));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn the_network_policy_waits_long_enough_for_a_restart_and_no_longer() {
        // Jitter adds up to one more delay per wait.
        let total: Duration = Backoff::NETWORK.delays().sum();
        assert_eq!(Backoff::NETWORK.delays().count(), 7);
        assert!(total >= Duration::from_secs(10), "{total:?}");
        assert!(total <= Duration::from_secs(60), "{total:?}");
    }

    #[test]
    fn async_operations_retry_too() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let outcome = crate::io::wait(async move {
            FAST.run(
                "test",
                || {
                    let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move { if n < 1 { Err("busy") } else { Ok(n) } }
                },
                |_| true,
            )
            .await
        });
        assert_eq!(outcome, Ok(1));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
