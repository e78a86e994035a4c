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
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TransformWatch {
    /// Watches `name`, starting from `current` (the version in use), checking
    /// every `interval`.
    pub fn spawn(
        registry: Arc<Registry>,
        runtime: Runtime,
        name: String,
        current: String,
        interval: Duration,
    ) -> std::io::Result<Self> {
        let ready = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (ready, stop) = (ready.clone(), stop.clone());
            let io = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("watch-{name}"))
                .spawn(move || {
                    io.block_on(watch(
                        &registry, &runtime, &name, current, interval, &ready, &stop,
                    ))
                })?
        };
        Ok(TransformWatch {
            ready,
            stop,
            thread: Some(thread),
        })
    }

    /// Switches `enricher` to the newly activated version if there is one;
    /// call it between batches. Returns whether it switched.
    pub fn swap_into(
        &self,
        enricher: &mut crate::enrich::Enricher,
    ) -> Result<bool, crate::runtime::RuntimeError> {
        match self.take_update() {
            Some(transform) => {
                enricher.swap_transform(&transform)?;
                Ok(true)
            }
            None => Ok(false),
        }
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
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn watch(
    registry: &Registry,
    runtime: &Runtime,
    name: &str,
    mut current: String,
    interval: Duration,
    ready: &Mutex<Option<Arc<Transform>>>,
    stop: &AtomicBool,
) {
    let mut seen_sequence = None;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(interval).await;
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
        match registry.load(runtime, name, &active).await {
            Ok(transform) => {
                tracing::info!(
                    transform = name,
                    from = &current[..current.len().min(12)],
                    to = &active[..12.min(active.len())],
                    "new version active; switching after the current batch"
                );
                *ready.lock().unwrap_or_else(|p| p.into_inner()) = Some(transform);
                current = active;
                seen_sequence = sequence;
            }
            Err(error) => {
                tracing::error!(transform = name, version = active, %error, "cannot load the active version; keeping the current one");
                seen_sequence = sequence;
            }
        }
    }
}
