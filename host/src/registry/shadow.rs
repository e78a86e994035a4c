//! Shadow runs in the registry: which version shadows is the manifest's
//! (`Change::Shadow`); what each instance found is
//! `shadow/<transform>/<instance>.json`, overwritten as it goes, the way
//! heartbeats are (see `crate::shadow`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Change, Manifest, Registry, RegistryError, check_name};
use crate::health::worker_file_name;
use crate::shadow::{ReportSink, ShadowReport};

/// Longest the last report of a shadow may hold its instance up.
const LAST_REPORT_WAIT: Duration = Duration::from_secs(3);

/// A transform's shadow run, as `GET /api/transforms/{name}/shadow` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShadowStatus {
    pub transform: String,
    pub active: Option<String>,
    /// The shadow version; `None` when no shadow runs.
    pub shadow: Option<String>,
    /// Every instance's report of this shadow against the active version,
    /// added up; `None` until one has reported.
    pub report: Option<ShadowReport>,
}

impl Registry {
    /// Makes `version` (a prefix) shadow the active version of `name`. The
    /// reports of an earlier shadow run are removed, so the new run's
    /// report starts from nothing.
    pub async fn shadow(&self, name: &str, version: &str) -> Result<Manifest, RegistryError> {
        let manifest = self
            .change(name, Change::Shadow(version.to_owned()))
            .await?;
        for entry in self.store.list_all(&reports_dir(name)).await? {
            self.store.delete(&entry.key).await?;
        }
        Ok(manifest)
    }

    /// Ends the shadow run of `name`, if one runs.
    pub async fn stop_shadow(&self, name: &str) -> Result<Manifest, RegistryError> {
        self.change(name, Change::StopShadow).await
    }

    pub async fn put_shadow_report(
        &self,
        instance: &str,
        report: &ShadowReport,
    ) -> Result<(), RegistryError> {
        check_name(&report.transform)?;
        let key = format!(
            "{}/{}",
            reports_dir(&report.transform),
            worker_file_name(instance)
        );
        let text = serde_json::to_vec(report).map_err(|e| RegistryError::Store {
            location: key.clone(),
            reason: e.to_string(),
        })?;
        self.store.put(&key, Bytes::from(text)).await?;
        Ok(())
    }

    /// The shadow run of `name`, with the reports of every instance that
    /// ran this shadow against the active version added up. A report that
    /// cannot be read is skipped with a warning.
    pub async fn shadow_status(&self, name: &str) -> Result<ShadowStatus, RegistryError> {
        let manifest = self.manifest(name).await?;
        let mut status = ShadowStatus {
            transform: manifest.name,
            active: manifest.active,
            shadow: manifest.shadow,
            report: None,
        };
        let (Some(active), Some(shadow)) = (&status.active, &status.shadow) else {
            return Ok(status);
        };
        for entry in self.store.list_all(&reports_dir(name)).await? {
            let Some(bytes) = self.store.get_if_exists(&entry.key).await? else {
                continue;
            };
            let report = match serde_json::from_slice::<ShadowReport>(&bytes) {
                Ok(report) => report,
                Err(error) => {
                    tracing::warn!(location = entry.key, %error, "not a shadow report; skipped");
                    continue;
                }
            };
            if report.active != *active || report.shadow != *shadow {
                continue;
            }
            match &mut status.report {
                Some(gathered) => gathered.merge(report),
                None => status.report = Some(report),
            }
        }
        Ok(status)
    }

    /// A sink that stores `instance`'s shadow reports here, on the I/O
    /// runtime: the latest one offered, at most once every `every`.
    pub fn shadow_sink(self: &Arc<Self>, instance: String, every: Duration) -> Arc<dyn ReportSink> {
        Arc::new(RegistryReports {
            registry: self.clone(),
            instance,
            every,
            latest: Arc::new(Mutex::new(None)),
            storing: Arc::new(AtomicBool::new(false)),
        })
    }
}

fn reports_dir(name: &str) -> String {
    format!("shadow/{name}")
}

struct RegistryReports {
    registry: Arc<Registry>,
    instance: String,
    every: Duration,
    /// The latest report offered and not stored yet.
    latest: Arc<Mutex<Option<ShadowReport>>>,
    /// A task is storing reports: it takes the latest one, stores it,
    /// waits `every`, and goes on while there is a newer one. So a batch
    /// never waits for the store, a slow store never piles reports up, and
    /// the last report offered is always stored in the end.
    storing: Arc<AtomicBool>,
}

impl ReportSink for RegistryReports {
    fn instance(&self) -> String {
        self.instance.clone()
    }

    fn offer(&self, report: &ShadowReport) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
        if self.storing.swap(true, Ordering::SeqCst) {
            return;
        }
        let (registry, latest, storing) = (
            self.registry.clone(),
            self.latest.clone(),
            self.storing.clone(),
        );
        let (instance, every) = (self.instance.clone(), self.every);
        crate::io::handle().spawn(async move {
            loop {
                let next = latest.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(report) = next {
                    if let Err(error) = registry.put_shadow_report(&instance, &report).await {
                        tracing::warn!(transform = report.transform, %error, "shadow report not stored; the next one tries again");
                    }
                    tokio::time::sleep(every).await;
                    continue;
                }
                storing.store(false, Ordering::SeqCst);
                // One offered between the take and the flag's release
                // found the flag still set: take it up here.
                let pending = latest.lock().unwrap_or_else(|p| p.into_inner()).is_some();
                if !pending || storing.swap(true, Ordering::SeqCst) {
                    break;
                }
            }
        });
    }

    fn last(&self, report: &ShadowReport) {
        let (registry, latest, storing) = (
            self.registry.clone(),
            self.latest.clone(),
            self.storing.clone(),
        );
        let (instance, report) = (self.instance.clone(), report.clone());
        let stored = crate::io::wait(async move {
            tokio::time::timeout(LAST_REPORT_WAIT, async move {
                // A report still being stored would land over this one.
                while storing.swap(true, Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                latest.lock().unwrap_or_else(|p| p.into_inner()).take();
                let stored = registry.put_shadow_report(&instance, &report).await;
                storing.store(false, Ordering::SeqCst);
                stored
            })
            .await
        });
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "last shadow report not stored"),
            Err(_) => tracing::warn!("last shadow report not stored in time"),
        }
    }
}
