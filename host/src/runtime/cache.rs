//! Precompiled artifacts on this machine's disk, named by the component's
//! hash and the engine's key, so a second process start loads a component
//! in milliseconds instead of compiling it for seconds. Every file is
//! checked as it is read (`artifact.rs`): one damaged, cut short or of
//! another engine is refused with a warning, and the caller compiles again
//! and writes over it.
//!
//! A cache that cannot be written costs only time: the load goes on, with
//! a warning.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::artifact::{Artifact, ComponentHash, EngineKey};

pub struct ArtifactCache {
    dir: Option<PathBuf>,
}

impl ArtifactCache {
    /// Artifacts in `dir`; none kept when `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        ArtifactCache { dir }
    }

    /// The checked artifact of `component` for `engine`, when this machine
    /// has a good one.
    pub fn read(
        &self,
        transform: &str,
        component: &ComponentHash,
        engine: &EngineKey,
    ) -> Option<Artifact> {
        let path = self.path(component, engine)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(transform, path = %path.display(), %error,
                    "cannot read the precompiled artifact; compiling instead");
                return None;
            }
        };
        match Artifact::open(Bytes::from(bytes), component, engine) {
            Ok(artifact) => Some(artifact),
            Err(refused) => {
                tracing::warn!(transform, path = %path.display(), %refused,
                    "precompiled artifact refused; compiling again");
                None
            }
        }
    }

    /// Keeps `artifact` for the next process.
    pub fn write(
        &self,
        transform: &str,
        component: &ComponentHash,
        engine: &EngineKey,
        artifact: &Artifact,
    ) {
        let Some(path) = self.path(component, engine) else {
            return;
        };
        if let Err(error) = write_atomically(&path, artifact.bytes()) {
            tracing::warn!(transform, path = %path.display(), %error,
                "cannot keep the precompiled artifact; the next process compiles again");
        }
    }

    fn path(&self, component: &ComponentHash, engine: &EngineKey) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{component}-{engine}.cwasm")))
    }
}

/// Readers must never see half an artifact: write aside, then rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // A temporary name of its own per writer: two threads (or processes)
    // compiling the same component never write the same file.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}
