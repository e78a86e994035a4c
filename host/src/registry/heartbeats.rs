//! Workers' heartbeats in the registry: `health/<pipeline>/<worker>.json`,
//! one object per worker, overwritten at each beat (see `crate::health`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::{Registry, RegistryError, check_name};
use crate::health::{Heartbeat, HeartbeatSink, now_ms};

/// Beats older than this are left out of [`Registry::heartbeats`]: the
/// workers of last week are not news. (They stay stored: a reader never
/// deletes, so a page open on a read-only key changes nothing.)
const FORGET_AFTER_MS: i64 = 60 * 60 * 1000;

/// Longest a worker's last beat may hold up its stop.
const LAST_BEAT_WAIT: Duration = Duration::from_secs(3);

impl Registry {
    pub async fn put_heartbeat(&self, beat: &Heartbeat) -> Result<(), RegistryError> {
        check_name(&beat.pipeline)?;
        let key = format!("health/{}/{}", beat.pipeline, beat.file_name());
        let text = serde_json::to_vec(beat).map_err(|e| RegistryError::Store {
            location: key.clone(),
            reason: e.to_string(),
        })?;
        self.store.put(&key, Bytes::from(text)).await?;
        Ok(())
    }

    /// The last beat of every worker heard from in the past hour, by
    /// pipeline and worker. A beat that cannot be read is skipped with a
    /// warning: one broken file does not hide every other worker.
    pub async fn heartbeats(&self) -> Result<Vec<Heartbeat>, RegistryError> {
        let keys = self.store.list_all("health").await?;
        let now = now_ms();
        let mut beats = Vec::with_capacity(keys.len());
        for entry in keys {
            let location = &entry.key;
            // Gone between the listing and the read: a worker's beat
            // being replaced is not an error.
            let Some(bytes) = self.store.get_if_exists(location).await? else {
                continue;
            };
            let beat = match serde_json::from_slice::<Heartbeat>(&bytes) {
                Ok(beat) => beat,
                Err(error) => {
                    tracing::warn!(%location, %error, "not a heartbeat; skipped");
                    continue;
                }
            };
            if now.saturating_sub(beat.at_ms) <= FORGET_AFTER_MS {
                beats.push(beat);
            }
        }
        beats.sort_by(|a, b| (&a.pipeline, &a.worker).cmp(&(&b.pipeline, &b.worker)));
        Ok(beats)
    }

    /// A sink that stores a worker's beats here, on the I/O runtime.
    pub fn heartbeat_sink(self: &Arc<Self>) -> Arc<dyn HeartbeatSink> {
        Arc::new(RegistrySink {
            registry: self.clone(),
            storing: Arc::new(AtomicBool::new(false)),
        })
    }
}

struct RegistrySink {
    registry: Arc<Registry>,
    /// A beat is being stored: a slow store skips beats instead of piling
    /// them up.
    storing: Arc<AtomicBool>,
}

impl HeartbeatSink for RegistrySink {
    fn beat(&self, beat: Heartbeat) {
        if self.storing.swap(true, Ordering::SeqCst) {
            return;
        }
        let (registry, storing) = (self.registry.clone(), self.storing.clone());
        crate::io::handle().spawn(async move {
            if let Err(error) = registry.put_heartbeat(&beat).await {
                tracing::warn!(pipeline = beat.pipeline, %error, "heartbeat not stored; the next one tries again");
            }
            storing.store(false, Ordering::SeqCst);
        });
    }

    fn last(&self, beat: Heartbeat) {
        let (registry, storing) = (self.registry.clone(), self.storing.clone());
        let stored = crate::io::wait(async move {
            tokio::time::timeout(LAST_BEAT_WAIT, async move {
                // A periodic beat still being stored would land after this
                // one and say the worker is alive: wait for it, and hold the
                // flag so that no later one starts.
                while storing.swap(true, Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                registry.put_heartbeat(&beat).await
            })
            .await
        });
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "last heartbeat not stored"),
            Err(_) => tracing::warn!("last heartbeat not stored in time"),
        }
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::throttle::{ThrottleConfig, ThrottledStore};

    use super::*;

    fn beat(stopped: bool) -> Heartbeat {
        crate::health::test_beat(now_ms(), stopped)
    }

    /// A periodic beat still on its way when the worker stops must not land
    /// over the last one (seen in CI: a stopped worker shown alive).
    #[test]
    fn a_slow_periodic_beat_does_not_overwrite_the_last_one() {
        let store = Arc::new(ThrottledStore::new(
            InMemory::new(),
            ThrottleConfig {
                wait_put_per_call: Duration::from_millis(400),
                ..ThrottleConfig::default()
            },
        ));
        let registry = Arc::new(Registry::on_store(store.clone()));
        let sink = registry.heartbeat_sink();
        sink.beat(beat(false));
        std::thread::sleep(Duration::from_millis(50));
        store.config_mut(|config| config.wait_put_per_call = Duration::ZERO);
        sink.last(beat(true));
        // Whatever was in flight has landed by now.
        std::thread::sleep(Duration::from_millis(600));
        let beats = crate::io::wait(async move { registry.heartbeats().await }).unwrap();
        assert_eq!(beats.len(), 1, "{beats:?}");
        assert!(beats.iter().all(|b| b.stopped), "{beats:?}");
    }
}
