//! The registry: transforms and pipeline definitions in the object store
//! (a local folder, or Azure), so that new versions are uploaded and
//! activated without redeploying anything.
//!
//! Layout under the registry URL:
//! - `transforms/<name>/blobs/<sha256>.wasm`: content-addressed components;
//! - `transforms/<name>/artifacts/<sha256>-<engine key>.cwasm`: each
//!   version precompiled once per engine configuration, for instances to
//!   load instead of compiling (`artifacts.rs`);
//! - `transforms/<name>/manifests/<sequence>.json`: the manifest, one
//!   immutable object per change. A change is written with put-if-absent at
//!   the next sequence number, so of two concurrent writers exactly one wins
//!   and the other re-reads and retries; readers take the highest number, so
//!   they never see a half-written manifest. (Put-if-absent works on a local
//!   folder too, where there is no ETag-conditional update.)
//! - `pipelines/<name>.json`: pipeline definitions;
//! - `health/<pipeline>/<worker>.json`: each worker's last heartbeat;
//! - `shadow/<transform>/<instance>.json`: each instance's report of the
//!   transform's shadow run (`shadow.rs`).

mod artifacts;
mod heartbeats;
mod manifest;
mod shadow;
mod watch;

use std::sync::Arc;

use bytes::Bytes;

pub use manifest::{Change, Manifest, VersionInfo};
pub use shadow::ShadowStatus;
pub use watch::TransformWatch;

use crate::enrich::{DefinitionError, PipelineDefinition};
use crate::names::TransformRef;
use crate::runtime::{Runtime, RuntimeError, Transform, World};
use crate::storage::{AzureCredentials, StorageError, Store};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("registry {location}: {reason}")]
    Store { location: String, reason: String },
    #[error("`{name}` is not a valid name: use {}", crate::names::NAME_RULE)]
    BadName { name: String },
    #[error("no transform `{name}` in the registry")]
    UnknownTransform { name: String },
    #[error("transform `{name}` has no active version: activate one first")]
    NoActiveVersion { name: String },
    #[error("transform `{name}` has no version `{version}`")]
    UnknownVersion { name: String, version: String },
    #[error(
        "version `{version}` of `{name}` is ambiguous: give at least 8 hex digits matching one version"
    )]
    AmbiguousVersion { name: String, version: String },
    #[error("transform `{name}` has no earlier version to roll back to")]
    NothingToRollBack { name: String },
    #[error("version {version} of `{name}` is active: activate another one before deleting it")]
    DeleteActive { name: String, version: String },
    #[error(
        "version {version} of `{name}` is the active one: shadow another version, or stop the shadow"
    )]
    ShadowIsActive { name: String, version: String },
    #[error(
        "version {version} of `{name}` cannot shadow: only a transformer shadows a transformer, and this is an {world}"
    )]
    ShadowWorld {
        name: String,
        version: String,
        world: String,
    },
    #[error("the upload is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("refused: {0}")]
    Invalid(#[from] RuntimeError),
    #[error("manifest of `{name}` kept changing under {attempts} attempts; try again")]
    Conflict { name: String, attempts: u32 },
    #[error("no pipeline `{name}` in the registry")]
    UnknownPipeline { name: String },
    #[error(transparent)]
    Definition(#[from] DefinitionError),
}

impl RegistryError {
    /// Whether the caller asked for something wrong (as opposed to the
    /// store failing): what an HTTP API answers with 4xx.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            RegistryError::Storage(_)
                | RegistryError::Store { .. }
                | RegistryError::Conflict { .. }
        )
    }

    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RegistryError::UnknownTransform { .. }
                | RegistryError::UnknownVersion { .. }
                | RegistryError::UnknownPipeline { .. }
        )
    }
}

/// The outcome of an upload.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub info: VersionInfo,
    pub manifest: Manifest,
}

/// Manifest writes retried this many times against concurrent writers.
const ATTEMPTS: u32 = 16;
/// Manifests older than this many changes are removed after a write.
const KEEP_MANIFESTS: u64 = 16;
/// Default cap on an uploaded component.
pub const DEFAULT_MAX_UPLOAD: usize = 64 << 20;

pub struct Registry {
    store: Store,
    url: String,
    max_upload: usize,
    /// Whether precompiled artifacts are stored and loaded (`artifacts.rs`).
    share_artifacts: bool,
}

impl Registry {
    pub fn open(url: &str, azure: &AzureCredentials) -> Result<Self, RegistryError> {
        Ok(Registry {
            store: Store::open(url, azure)?,
            url: url.to_owned(),
            max_upload: DEFAULT_MAX_UPLOAD,
            share_artifacts: true,
        })
    }

    /// A registry on any store: tests use it to slow one call down.
    #[cfg(test)]
    pub(crate) fn on_store(store: Arc<dyn object_store::ObjectStore>) -> Self {
        Registry {
            store: Store::on_object_store("memory:///", store),
            url: "memory:///".to_owned(),
            max_upload: DEFAULT_MAX_UPLOAD,
            share_artifacts: true,
        }
    }

    pub fn with_max_upload(mut self, bytes: usize) -> Self {
        self.max_upload = bytes;
        self
    }

    /// Whether versions are shared precompiled (on unless turned off): each
    /// is compiled once per engine configuration and its artifact stored
    /// beside it, for every instance to load instead of compiling. An
    /// artifact is native code run outside the sandbox, checked against
    /// damage but not against someone who can write the store: turn this
    /// off where the store's writers are trusted less than the binaries
    /// (every instance then compiles for itself).
    pub fn with_shared_artifacts(mut self, share: bool) -> Self {
        self.share_artifacts = share;
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn max_upload(&self) -> usize {
        self.max_upload
    }

    /// Validates `wasm` (a component of the transformer or aggregator world
    /// that compiles), stores it and its artifact and records the version;
    /// nothing becomes visible if any step fails (an artifact not shared
    /// is only compiled by the first instance that loads the version).
    pub async fn upload(
        &self,
        runtime: &Runtime,
        name: &str,
        wasm: Bytes,
        activate: bool,
    ) -> Result<Uploaded, RegistryError> {
        check_name(name)?;
        if wasm.len() > self.max_upload {
            return Err(RegistryError::TooLarge {
                size: wasm.len(),
                limit: self.max_upload,
            });
        }
        let (loaded, artifact) = {
            let (runtime, name, wasm) = (runtime.clone(), name.to_owned(), wasm.clone());
            // Compiling takes seconds for a large component: off the I/O
            // threads.
            self.off_io(move || runtime.prepare(&name, &wasm)).await??
        };
        let info = VersionInfo {
            version: loaded.version().to_owned(),
            uploaded_at_ms: now_ms(),
            size: wasm.len() as u64,
            world: match loaded.world() {
                World::Transformer => "transformer".into(),
                World::Aggregator => "aggregator".into(),
            },
            contract: Some(loaded.contract().as_str().to_owned()),
        };
        self.store.put(&blob_key(name, &info.version), wasm).await?;
        self.share_uploaded(runtime, name, &info.version, &artifact)
            .await;
        let manifest = self
            .change(
                name,
                Change::Add {
                    info: info.clone(),
                    activate,
                },
            )
            .await?;
        tracing::info!(
            transform = name,
            version = &info.version[..12],
            activate,
            "transform uploaded"
        );
        Ok(Uploaded { info, manifest })
    }

    /// The latest manifest of `name`.
    pub async fn manifest(&self, name: &str) -> Result<Manifest, RegistryError> {
        check_name(name)?;
        match self.latest(name).await? {
            Some((_, manifest)) => Ok(manifest),
            None => Err(RegistryError::UnknownTransform {
                name: name.to_owned(),
            }),
        }
    }

    /// The latest sequence number of `name`'s manifest, from one listing:
    /// what a watcher polls.
    pub async fn sequence(&self, name: &str) -> Result<Option<u64>, RegistryError> {
        Ok(self.sequences(name).await?.into_iter().max())
    }

    /// Every transform's manifest, by name.
    pub async fn list(&self) -> Result<Vec<Manifest>, RegistryError> {
        let listing = self.store.list("transforms").await?;
        let mut manifests = Vec::new();
        for dir in listing.folders {
            if let Some(name) = file_name(&dir)
                && let Some((_, manifest)) = self.latest(name).await?
            {
                manifests.push(manifest);
            }
        }
        manifests.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(manifests)
    }

    pub async fn activate(&self, name: &str, version: &str) -> Result<Manifest, RegistryError> {
        self.change(name, Change::Activate(version.to_owned()))
            .await
    }

    pub async fn rollback(&self, name: &str) -> Result<Manifest, RegistryError> {
        self.change(name, Change::Rollback).await
    }

    /// Removes a version that is not active (its component stays in the
    /// store for pipelines that pinned it before, until cleaned up).
    pub async fn delete_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Manifest, RegistryError> {
        self.change(name, Change::Delete(version.to_owned())).await
    }

    /// Loads the version `reference` names: the active one, or a pinned one.
    pub async fn resolve(
        &self,
        runtime: &Runtime,
        reference: &TransformRef,
    ) -> Result<Arc<Transform>, RegistryError> {
        let version = self.version_of(reference).await?;
        self.load(runtime, reference.name(), &version).await
    }

    /// The full version (SHA-256) `reference` names now.
    pub async fn version_of(&self, reference: &TransformRef) -> Result<String, RegistryError> {
        let name = reference.name();
        let manifest = self.manifest(name).await?;
        match reference.pinned_version() {
            Some(prefix) => Ok(manifest.find(prefix)?.version.clone()),
            None => manifest
                .active
                .clone()
                .ok_or_else(|| RegistryError::NoActiveVersion {
                    name: name.to_owned(),
                }),
        }
    }

    /// Creates or replaces a pipeline definition (checked first).
    pub async fn put_pipeline(&self, definition: &PipelineDefinition) -> Result<(), RegistryError> {
        check_name(&definition.name)?;
        let text = serde_json::to_vec_pretty(definition).map_err(|e| RegistryError::Store {
            location: pipeline_key(&definition.name),
            reason: e.to_string(),
        })?;
        self.store
            .put(&pipeline_key(&definition.name), Bytes::from(text))
            .await?;
        Ok(())
    }

    pub async fn pipeline(&self, name: &str) -> Result<PipelineDefinition, RegistryError> {
        check_name(name)?;
        let bytes = self
            .store
            .get_if_exists(&pipeline_key(name))
            .await?
            .ok_or_else(|| RegistryError::UnknownPipeline {
                name: name.to_owned(),
            })?;
        let text = String::from_utf8_lossy(&bytes);
        Ok(PipelineDefinition::from_json(&text)?)
    }

    pub async fn pipelines(&self) -> Result<Vec<PipelineDefinition>, RegistryError> {
        let mut names: Vec<String> = (self.store.list_all("pipelines").await?)
            .iter()
            .filter_map(|entry| file_name(&entry.key)?.strip_suffix(".json"))
            .map(str::to_owned)
            .collect();
        names.sort();
        let mut definitions = Vec::with_capacity(names.len());
        for name in names {
            definitions.push(self.pipeline(&name).await?);
        }
        Ok(definitions)
    }

    pub async fn delete_pipeline(&self, name: &str) -> Result<(), RegistryError> {
        self.pipeline(name).await?;
        Ok(self.store.delete(&pipeline_key(name)).await?)
    }

    /// Applies `change` to the latest manifest and writes the result at the
    /// next sequence number; when another writer got there first, re-reads
    /// and tries again.
    async fn change(&self, name: &str, change: Change) -> Result<Manifest, RegistryError> {
        check_name(name)?;
        for attempt in 1..=ATTEMPTS {
            let current = match (self.latest(name).await?, &change) {
                (Some((_, manifest)), _) => manifest,
                (None, Change::Add { .. }) => Manifest::empty(name),
                (None, _) => {
                    return Err(RegistryError::UnknownTransform {
                        name: name.to_owned(),
                    });
                }
            };
            let next = current.apply(&change)?;
            let text = serde_json::to_vec_pretty(&next).map_err(|e| RegistryError::Store {
                location: name.to_owned(),
                reason: e.to_string(),
            })?;
            let key = manifest_key(name, next.sequence);
            if self.store.put_if_absent(&key, Bytes::from(text)).await? {
                self.prune(name, next.sequence).await;
                return Ok(next);
            }
            tracing::debug!(
                transform = name,
                attempt,
                "manifest changed meanwhile; retrying"
            );
        }
        Err(RegistryError::Conflict {
            name: name.to_owned(),
            attempts: ATTEMPTS,
        })
    }

    async fn latest(&self, name: &str) -> Result<Option<(u64, Manifest)>, RegistryError> {
        let Some(sequence) = self.sequence(name).await? else {
            return Ok(None);
        };
        let key = manifest_key(name, sequence);
        let bytes = self
            .store
            .get_if_exists(&key)
            .await?
            .ok_or_else(|| RegistryError::Store {
                location: key.clone(),
                reason: "the manifest disappeared while being read".to_owned(),
            })?;
        let manifest = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Store {
            location: key,
            reason: format!("not a manifest: {e}"),
        })?;
        Ok(Some((sequence, manifest)))
    }

    async fn sequences(&self, name: &str) -> Result<Vec<u64>, RegistryError> {
        let dir = format!("transforms/{name}/manifests");
        Ok((self.store.list_all(&dir).await?)
            .iter()
            .filter_map(|entry| file_name(&entry.key)?.strip_suffix(".json"))
            .filter_map(|n| n.parse().ok())
            .collect())
    }

    /// Best effort: old manifests only cost listing time.
    async fn prune(&self, name: &str, latest: u64) {
        let Ok(sequences) = self.sequences(name).await else {
            return;
        };
        for old in sequences
            .into_iter()
            .filter(|s| s + KEEP_MANIFESTS < latest)
        {
            let _ = self.store.delete(&manifest_key(name, old)).await;
        }
    }
}

fn check_name(name: &str) -> Result<(), RegistryError> {
    if crate::names::is_valid(name) {
        Ok(())
    } else {
        Err(RegistryError::BadName {
            name: name.chars().take(80).collect(),
        })
    }
}

/// The last segment of `key`.
fn file_name(key: &str) -> Option<&str> {
    key.rsplit('/').next().filter(|name| !name.is_empty())
}

fn blob_key(name: &str, version: &str) -> String {
    format!("transforms/{name}/blobs/{version}.wasm")
}

fn manifest_key(name: &str, sequence: u64) -> String {
    format!("transforms/{name}/manifests/{sequence:020}.json")
}

fn pipeline_key(name: &str) -> String {
    format!("pipelines/{name}.json")
}

fn now_ms() -> u64 {
    u64::try_from(crate::clock::now_ms()).unwrap_or_default()
}
