//! Hot reload: a thread polls a transform's manifest and, when another
//! version becomes active, loads and compiles it there, off the hot path.
//! The worker takes the new transform between batches, never inside one.
//! The shadow version (see `crate::shadow`) is followed the same way: a
//! newly named one is loaded, and its end is passed on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Registry;
use crate::runtime::{Runtime, Transform};

pub struct TransformWatch {
    ready: Arc<Mutex<Ready>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// What changed since the worker last looked.
#[derive(Default)]
struct Ready {
    active: Option<Arc<Transform>>,
    /// `Some(None)`: the shadow run ended; `Some(Some(t))`: `t` shadows.
    shadow: Option<Option<Arc<Transform>>>,
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
        let ready = Arc::new(Mutex::new(Ready::default()));
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
            .active
            .take()
    }

    /// A change of the shadow version, once: `Some(None)` when the shadow
    /// run ended, `Some(Some(t))` when `t` shadows from now on.
    pub fn take_shadow(&self) -> Option<Option<Arc<Transform>>> {
        self.ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .shadow
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
    ready: Arc<Mutex<Ready>>,
    stop: Arc<AtomicBool>,
) {
    let name = name.as_str();
    let mut seen_sequence = None;
    // None at first: a shadow already running is loaded at the first poll.
    let mut shadowing: Option<String> = None;
    // After a failed load the next attempt waits twice as long, up to
    // MAX_RETRY: a plain doubling, which needs no backoff crate.
    let mut wait = Duration::ZERO;
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
        let manifest = match registry.manifest(name).await {
            Ok(manifest) => manifest,
            Err(error) => {
                tracing::warn!(transform = name, %error, "cannot read the manifest; will retry");
                continue;
            }
        };
        // Both are taken in one go, so that a promotion (the shadow
        // becomes active, the shadow run ends) reaches the worker whole.
        let mut next = Ready::default();
        let mut failed = None;
        if let Some(active) = manifest.active.filter(|a| *a != current) {
            match registry.load(&runtime, name, &active).await {
                Ok(transform) => {
                    tracing::info!(
                        transform = name,
                        from = current.get(..12).unwrap_or(&current),
                        to = active.get(..12).unwrap_or(&active),
                        "new version active; switching after the current batch"
                    );
                    next.active = Some(transform);
                    current = active;
                }
                Err(error) => failed = Some((active, error)),
            }
        }
        if manifest.shadow != shadowing && failed.is_none() {
            match &manifest.shadow {
                None => {
                    tracing::info!(
                        transform = name,
                        "shadow run ended; stopping it after the current batch"
                    );
                    next.shadow = Some(None);
                    shadowing = None;
                }
                Some(shadow) => match registry.load(&runtime, name, shadow).await {
                    Ok(transform) => {
                        tracing::info!(
                            transform = name,
                            shadow = shadow.get(..12).unwrap_or(shadow),
                            "shadow version named; running it beside the active one from the next batch"
                        );
                        next.shadow = Some(Some(transform));
                        shadowing = manifest.shadow.clone();
                    }
                    Err(error) => failed = Some((shadow.clone(), error)),
                },
            }
        }
        if next.active.is_some() || next.shadow.is_some() {
            let mut ready = ready.lock().unwrap_or_else(|p| p.into_inner());
            if next.active.is_some() {
                ready.active = next.active;
            }
            if next.shadow.is_some() {
                ready.shadow = next.shadow;
            }
        }
        match failed {
            None => {
                seen_sequence = sequence;
                retry = interval;
            }
            Some((version, error)) => {
                // Not marked as seen: the load is tried again (a storage
                // hiccup should not pin the old version until the next
                // activation).
                retry = (retry * 2).min(MAX_RETRY);
                wait = retry;
                tracing::warn!(
                    transform = name,
                    version,
                    %error,
                    retry_in_ms = wait.as_millis() as u64,
                    "cannot load a version named in the manifest yet; keeping the current one and trying again"
                );
            }
        }
    }
}
