//! Heartbeats: what each running enrichment worker last said about itself
//! (totals, rate, lag), stored beside the pipelines in the registry, so the
//! topology page can show which workers are alive and how they are doing
//! without reaching them (they may run anywhere: a container, a VM, a
//! laptop). A worker beats every few seconds; one not heard from in three
//! of its intervals is silent, and a clean stop leaves a last beat saying
//! so.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Beats missed before a worker counts as silent.
const MISSED_BEATS: i64 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub pipeline: String,
    /// The worker's name: its `--instance-id`, else its host and process id.
    pub worker: String,
    pub transform_version: String,
    /// Milliseconds since the Unix epoch.
    pub started_ms: i64,
    pub at_ms: i64,
    /// How often this worker beats, so a reader knows when it is late.
    pub every_ms: u64,
    pub read: u64,
    pub produced: u64,
    pub dead_lettered: u64,
    pub dropped: u64,
    /// Records read per second since the previous beat.
    pub rate: u64,
    /// Records past the group's committed offsets over the worker's
    /// partitions; `None` until the broker has answered.
    pub lag: Option<i64>,
    /// The last beat of a worker that stopped cleanly.
    pub stopped: bool,
}

/// What a reader makes of a worker's last beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    Alive,
    /// No beat for three of its intervals: stopped without saying so
    /// (killed, its machine gone) or cut off from the registry.
    Silent,
    Stopped,
}

impl Heartbeat {
    pub fn liveness(&self, now_ms: i64) -> Liveness {
        if self.stopped {
            return Liveness::Stopped;
        }
        let every = i64::try_from(self.every_ms).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(self.at_ms) <= every.saturating_mul(MISSED_BEATS) {
            Liveness::Alive
        } else {
            Liveness::Silent
        }
    }

    /// The file name of this worker's beats: see [`worker_file_name`].
    pub fn file_name(&self) -> String {
        worker_file_name(&self.worker)
    }
}

/// The file name of what a worker stores (its beats, its shadow report):
/// its name with anything but `A-Z a-z 0-9 . _ -` replaced, so an instance
/// id is never a path.
pub fn worker_file_name(worker: &str) -> String {
    let safe: String = worker
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.trim_start_matches('.') {
        "" => "worker.json".to_owned(),
        name => format!("{name}.json"),
    }
}

/// Where a worker's beats go.
pub trait HeartbeatSink: Send + Sync {
    /// Stores `beat` without holding the worker up; one that cannot be
    /// stored is logged, and the next beat tries again.
    fn beat(&self, beat: Heartbeat);
    /// Stores a worker's last beat, waiting (briefly) until it is stored.
    fn last(&self, beat: Heartbeat);
}

/// A worker's beats: where they go, its name and how often.
#[derive(Clone)]
pub struct Heartbeats {
    pub sink: Arc<dyn HeartbeatSink>,
    pub worker: String,
    pub every: Duration,
}

impl std::fmt::Debug for Heartbeats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heartbeats")
            .field("worker", &self.worker)
            .field("every", &self.every)
            .finish()
    }
}

/// A worker's name when it has no instance id: its host and process id,
/// unique among running workers.
pub fn default_worker_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

pub use crate::clock::now_ms;

/// A beat of pipeline `p`, worker `w`, at `at_ms`: what the tests of the
/// beats and of their storage start from.
#[cfg(test)]
pub(crate) fn test_beat(at_ms: i64, stopped: bool) -> Heartbeat {
    Heartbeat {
        pipeline: "p".into(),
        worker: "w".into(),
        transform_version: "v".into(),
        started_ms: 0,
        at_ms,
        every_ms: 5_000,
        read: 0,
        produced: 0,
        dead_lettered: 0,
        dropped: 0,
        rate: 0,
        lag: None,
        stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(at_ms: i64, stopped: bool) -> Heartbeat {
        test_beat(at_ms, stopped)
    }

    #[test]
    fn a_worker_is_silent_after_three_missed_beats() {
        assert_eq!(beat(100_000, false).liveness(115_000), Liveness::Alive);
        assert_eq!(beat(100_000, false).liveness(115_001), Liveness::Silent);
        assert_eq!(beat(100_000, true).liveness(100_000), Liveness::Stopped);
        // A clock behind the worker's is no reason to call it silent.
        assert_eq!(beat(100_000, false).liveness(0), Liveness::Alive);
    }

    #[test]
    fn a_worker_name_is_never_a_path() {
        let mut b = beat(0, false);
        for (name, file) in [
            ("../../etc/passwd", "_.._etc_passwd.json"),
            ("a/b", "a_b.json"),
            ("..", "worker.json"),
            ("", "worker.json"),
            ("host-12", "host-12.json"),
        ] {
            b.worker = name.into();
            assert_eq!(b.file_name(), file, "{name}");
        }
    }
}
