//! Finding a transform by name: the one way every entry point (the CLI, the
//! HTTP routes, the timer, the Kafka trigger, the export's aggregators)
//! turns a name from a pipeline or a request into a loaded component, so a
//! pipeline behaves the same whichever way it runs.
//!
//! A [`TransformSource`] is the registry when one is configured, else a
//! folder of `.wasm` files. Names are checked once, here, against
//! [`NAME_RULE`]; loaded versions stay in memory, so a request or a batch
//! that names a transform pays the load once per version.

mod follow;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use crate::names::{BadName, NAME_RULE, TransformName, is_valid};
pub use follow::{DEFAULT_RELOAD, Followed};

use crate::names::TransformRef;
use crate::registry::{Registry, RegistryError};
use crate::runtime::{Runtime, RuntimeError, Transform, content_hash};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    BadName(#[from] BadName),
    #[error(
        "no transform `{name}` in {}: none of {tried} exists (build the guests with \
         scripts/build-guests.sh, or set SLUICE_TRANSFORMS_DIR)",
        dir.display()
    )]
    NotInFolder {
        name: String,
        dir: PathBuf,
        tried: String,
    },
    #[error("reading transform `{name}` from {}: {source}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "transform `{name}` is pinned to version {pinned}, but the one in {} is {found}",
        dir.display()
    )]
    PinnedElsewhere {
        name: String,
        pinned: String,
        found: String,
        dir: PathBuf,
    },
    #[error(transparent)]
    Load(#[from] RuntimeError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl SourceError {
    /// The caller named something that is not there.
    pub fn is_not_found(&self) -> bool {
        match self {
            SourceError::NotInFolder { .. } | SourceError::PinnedElsewhere { .. } => true,
            SourceError::Registry(e) => e.is_not_found(),
            _ => false,
        }
    }

    /// The caller asked for something wrong (4xx), as opposed to the store
    /// or the component failing.
    pub fn is_client_error(&self) -> bool {
        match self {
            SourceError::BadName(_) => true,
            SourceError::Registry(e) => e.is_client_error(),
            other => other.is_not_found(),
        }
    }
}

/// `<dir>/<name>.wasm`, or with `_` for `-` as cargo names its outputs.
fn folder_file(dir: &std::path::Path, name: &TransformName) -> Result<PathBuf, SourceError> {
    let candidates = [
        dir.join(format!("{name}.wasm")),
        dir.join(format!("{}.wasm", name.as_str().replace('-', "_"))),
    ];
    match candidates.iter().find(|c| c.is_file()) {
        Some(path) => Ok(path.clone()),
        None => Err(SourceError::NotInFolder {
            name: name.to_string(),
            dir: dir.to_owned(),
            tried: candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

enum Origin {
    Registry(Arc<Registry>),
    Folder(PathBuf),
}

pub struct TransformSource {
    runtime: Runtime,
    origin: Origin,
    /// By name and full version (SHA-256).
    loaded: Mutex<HashMap<(TransformName, String), Arc<Transform>>>,
}

impl TransformSource {
    /// Transforms are `<dir>/<name>.wasm` (or with `_` for `-`, as cargo
    /// names its outputs).
    pub fn folder(runtime: Runtime, dir: PathBuf) -> Self {
        Self::new(runtime, Origin::Folder(dir))
    }

    /// Transforms are the registry's active (or pinned) versions.
    pub fn registry(runtime: Runtime, registry: Arc<Registry>) -> Self {
        Self::new(runtime, Origin::Registry(registry))
    }

    fn new(runtime: Runtime, origin: Origin) -> Self {
        TransformSource {
            runtime,
            origin,
            loaded: Mutex::default(),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn registry_store(&self) -> Option<&Arc<Registry>> {
        match &self.origin {
            Origin::Registry(registry) => Some(registry),
            Origin::Folder(_) => None,
        }
    }

    /// Where transforms come from, for messages.
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::Registry(registry) => format!("the registry at {}", registry.url()),
            Origin::Folder(dir) => format!("the folder {}", dir.display()),
        }
    }

    /// The version `reference` names: the active one, or the pinned one.
    pub fn load(&self, reference: &TransformRef) -> Result<Arc<Transform>, SourceError> {
        self.load_named(reference.name(), reference.pinned_version())
    }

    /// The component file of `name` in a folder source; `None` for a
    /// registry (whose components are already where a registry keeps
    /// them).
    pub fn component_file(&self, name: &str) -> Result<Option<PathBuf>, SourceError> {
        let name = TransformName::parse(name)?;
        match &self.origin {
            Origin::Registry(_) => Ok(None),
            Origin::Folder(dir) => folder_file(dir, &name).map(Some),
        }
    }

    /// `name`, at `version` (a prefix of its SHA-256) or the active one.
    pub fn load_named(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<Transform>, SourceError> {
        let name = TransformName::parse(name)?;
        match &self.origin {
            Origin::Registry(registry) => {
                let reference = TransformRef::Pinned {
                    name: name.to_string(),
                    version: version.map(str::to_owned),
                };
                let found = {
                    let registry = registry.clone();
                    crate::io::wait(async move { registry.version_of(&reference).await })?
                };
                if let Some(loaded) = self.cached(&name, &found) {
                    return Ok(loaded);
                }
                let (registry, runtime) = (registry.clone(), self.runtime.clone());
                let (text, version) = (name.to_string(), found.clone());
                let transform =
                    crate::io::wait(async move { registry.load(&runtime, &text, &version).await })?;
                Ok(self.remember(name, found, transform))
            }
            Origin::Folder(dir) => {
                let path = folder_file(dir, &name)?;
                let wasm = std::fs::read(&path).map_err(|source| SourceError::Read {
                    name: name.to_string(),
                    path: path.clone(),
                    source,
                })?;
                let found = content_hash(&wasm);
                if let Some(pinned) = version
                    && !found.starts_with(pinned)
                {
                    return Err(SourceError::PinnedElsewhere {
                        name: name.to_string(),
                        pinned: pinned.to_owned(),
                        found: found.chars().take(12).collect(),
                        dir: dir.clone(),
                    });
                }
                if let Some(loaded) = self.cached(&name, &found) {
                    return Ok(loaded);
                }
                let transform = self.runtime.load(name.as_str(), &wasm)?;
                Ok(self.remember(name, found, transform))
            }
        }
    }

    fn cached(&self, name: &TransformName, version: &str) -> Option<Arc<Transform>> {
        let loaded = self.loaded.lock().ok()?;
        loaded.get(&(name.clone(), version.to_owned())).cloned()
    }

    fn remember(
        &self,
        name: TransformName,
        version: String,
        transform: Arc<Transform>,
    ) -> Arc<Transform> {
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert((name, version), transform.clone());
        }
        transform
    }
}

impl std::fmt::Debug for TransformSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TransformSource")
            .field(&self.describe())
            .finish()
    }
}
