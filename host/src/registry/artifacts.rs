//! Precompiled artifacts shared through the registry, so that a version is
//! compiled once per engine configuration (at upload, or by the first
//! instance that loads it) rather than by every instance at every
//! activation: a Python component takes seconds to compile, and its
//! artifact a fraction of one to fetch, check and load.
//!
//! An artifact is `transforms/<name>/artifacts/<version>-<engine key>.cwasm`
//! beside the component, sealed as `runtime::Artifact` seals it and checked
//! as it is read: one that is damaged, cut short, of another component or
//! of another engine is refused, and the instance compiles. What an instance
//! compiled is written with a swap on what it read: create-only where it
//! found nothing, so of instances compiling at once one stores its artifact
//! and the others leave it be; over the refused object only while it is
//! still that object, so a good artifact stored meanwhile is never
//! replaced. Sharing is best effort: a store that refuses the write costs
//! other instances a compile, never this load.

use std::sync::Arc;

use super::{Registry, RegistryError, blob_key, check_name};
use crate::runtime::{Artifact, ComponentHash, Runtime, Transform, content_hash};
use crate::storage::Version;

fn artifact_key(name: &str, version: &str, runtime: &Runtime) -> String {
    format!(
        "transforms/{name}/artifacts/{version}-{}.cwasm",
        runtime.engine_key()
    )
}

impl Registry {
    /// Loads one stored version of `name`: from this machine's artifact,
    /// else from the registry's artifact for this engine, else by compiling
    /// the component (and sharing its artifact). Compiling and checking run
    /// off the I/O threads.
    pub async fn load(
        &self,
        runtime: &Runtime,
        name: &str,
        version: &str,
    ) -> Result<Arc<Transform>, RegistryError> {
        check_name(name)?;
        if ComponentHash::parse(version).is_none() {
            return Err(RegistryError::UnknownVersion {
                name: name.to_owned(),
                version: version.chars().take(80).collect(),
            });
        }
        let (owned_runtime, owned_name, owned_version) =
            (runtime.clone(), name.to_owned(), version.to_owned());
        let cached = self
            .off_io(move || owned_runtime.load_cached(&owned_name, &owned_version))
            .await??;
        if let Some(transform) = cached {
            return Ok(transform);
        }

        let key = artifact_key(name, version, runtime);
        let mut seen = Version::Absent;
        if self.share_artifacts {
            match self.store.get_versioned(&key).await {
                Ok((Some(bytes), read)) => {
                    let (runtime, owned_name, owned_version) =
                        (runtime.clone(), name.to_owned(), version.to_owned());
                    let loaded = self
                        .off_io(move || runtime.load_shared(&owned_name, &owned_version, bytes))
                        .await?;
                    match loaded {
                        Ok(transform) => return Ok(transform),
                        Err(error) => {
                            tracing::warn!(transform = name, key, %error,
                                "shared artifact not loaded; compiling and replacing it");
                            seen = read;
                        }
                    }
                }
                Ok((None, absent)) => seen = absent,
                Err(error) => tracing::warn!(transform = name, key, %error,
                    "cannot read the shared artifact; compiling instead"),
            }
        }

        let wasm = self.component(name, version).await?;
        let (runtime, owned_name) = (runtime.clone(), name.to_owned());
        let (transform, artifact) = self
            .off_io(move || runtime.prepare(&owned_name, &wasm))
            .await??;
        if self.share_artifacts {
            self.share(name, &key, &seen, &artifact).await;
        }
        Ok(transform)
    }

    /// Stores the artifact of a version just uploaded, for the instances
    /// that will load it, unless one is stored already.
    pub(super) async fn share_uploaded(
        &self,
        runtime: &Runtime,
        name: &str,
        version: &str,
        artifact: &Artifact,
    ) {
        if self.share_artifacts {
            let key = artifact_key(name, version, runtime);
            self.share(name, &key, &Version::Absent, artifact).await;
        }
    }

    /// Writes `artifact` at `key` if it is still as `seen`.
    async fn share(&self, name: &str, key: &str, seen: &Version, artifact: &Artifact) {
        let bytes = artifact.bytes().clone();
        let size = bytes.len();
        match self.store.swap(key, seen, bytes).await {
            Ok(Some(_)) => {
                tracing::info!(transform = name, key, size, "precompiled artifact shared")
            }
            Ok(None) => tracing::debug!(
                transform = name,
                key,
                "another instance stored the artifact first; keeping theirs"
            ),
            Err(error) => tracing::warn!(transform = name, key, %error,
                "cannot share the precompiled artifact; other instances compile it themselves"),
        }
    }

    /// The component of `version`, checked to be that version: a damaged
    /// object would otherwise load under a version it is not.
    async fn component(&self, name: &str, version: &str) -> Result<bytes::Bytes, RegistryError> {
        let key = blob_key(name, version);
        let wasm =
            self.store
                .get_if_exists(&key)
                .await?
                .ok_or_else(|| RegistryError::UnknownVersion {
                    name: name.to_owned(),
                    version: version.to_owned(),
                })?;
        let found = content_hash(&wasm);
        if found != version {
            return Err(RegistryError::Store {
                location: self.store.describe(&key),
                reason: format!("the stored component is damaged: its SHA-256 is {found}"),
            });
        }
        Ok(wasm)
    }

    /// Runs `work` (a compile or a check of megabytes) off the I/O threads.
    pub(super) async fn off_io<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RegistryError> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| RegistryError::Store {
                location: self.url.clone(),
                reason: format!("loading a transform crashed: {e}"),
            })
    }
}
