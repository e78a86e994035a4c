//! Hot reload: a thread polls a transform's manifest and, when another
//! version becomes active, loads and compiles it there, off the hot path.
//! The worker takes the new transform between batches, never inside one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Registry;
use crate::runtime::{Runtime, Transform};

pub struct TransformWatch {
    ready: Arc<Mutex<Option<Arc<Transform>>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// Longest wait between attempts to load a version that failed to load.
const MAX_RETRY: Duration = Duration::from_secs(30);

impl TransformWatch {
    /// Watches `name`, starting from `current` (the version in use), checking
    /// every `interval`. The watch is a task on the host's I/O runtime.
    pub fn spawn(
        registry: Arc<Registry>,
        runtime: Runtime,
        name: String,
        current: String,
        interval: Duration,
    ) -> Self {
        let ready = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let task = crate::io::handle().spawn(watch(
            registry,
            runtime,
            name,
            current,
            interval,
            ready.clone(),
            stop.clone(),
        ));
        TransformWatch { ready, stop, task }
    }

    /// The newly activated transform, once, when there is one.
    pub fn take_update(&self) -> Option<Arc<Transform>> {
        self.ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl Drop for TransformWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

async fn watch(
    registry: Arc<Registry>,
    runtime: Runtime,
    name: String,
    mut current: String,
    interval: Duration,
    ready: Arc<Mutex<Option<Arc<Transform>>>>,
    stop: Arc<AtomicBool>,
) {
    let name = name.as_str();
    let mut seen_sequence = None;
    // After a failed load the next attempt waits twice as long, up to
    // MAX_RETRY: a plain doubling, which needs no backoff crate.
    let mut wait = interval;
    let mut retry = interval;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(wait).await;
        wait = interval;
        // One listing per poll; the manifest is read only when it changed.
        let sequence = match registry.sequence(name).await {
            Ok(sequence) => sequence,
            Err(error) => {
                tracing::warn!(transform = name, %error, "cannot poll the registry; will retry");
                continue;
            }
        };
        if sequence.is_none() || sequence == seen_sequence {
            continue;
        }
        let active = match registry.manifest(name).await {
            Ok(manifest) => manifest.active,
            Err(error) => {
                tracing::warn!(transform = name, %error, "cannot read the manifest; will retry");
                continue;
            }
        };
        let Some(active) = active.filter(|a| *a != current) else {
            seen_sequence = sequence;
            continue;
        };
        match registry.load(&runtime, name, &active).await {
            Ok(transform) => {
                tracing::info!(
                    transform = name,
                    from = current.get(..12).unwrap_or(&current),
                    to = active.get(..12).unwrap_or(&active),
                    "new version active; switching after the current batch"
                );
                *ready.lock().unwrap_or_else(|p| p.into_inner()) = Some(transform);
                current = active;
                seen_sequence = sequence;
                retry = interval;
            }
            Err(error) => {
                // Not marked as seen: the load is tried again (a storage
                // hiccup should not pin the old version until the next
                // activation).
                retry = (retry * 2).min(MAX_RETRY);
                wait = retry;
                tracing::warn!(
                    transform = name,
                    version = active,
                    %error,
                    retry_in_ms = wait.as_millis() as u64,
                    "cannot load the active version yet; keeping the current one and trying again"
                );
            }
        }
    }
}
