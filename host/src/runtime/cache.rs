//! Precompiled artifacts on disk, keyed by the component's content hash and
//! the engine's compatibility hash, so a second process start deserialises in
//! a fraction of a millisecond instead of compiling for hundreds.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::RuntimeError;

/// How a component was obtained; tests and logs want to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialised from a precompiled artifact.
    Hit,
    /// Compiled now (and stored, when a cache folder is set).
    Compiled,
}

pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// The content hash of a component: its version everywhere in Sluice.
pub fn content_hash(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

impl ArtifactCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        // DefaultHasher's algorithm is fixed within one build of Sluice,
        // which is all the key needs: another build recompiles.
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ArtifactCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    pub fn load(
        &self,
        engine: &Engine,
        name: &str,
        hash: &str,
        wasm: &[u8],
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        let Some(dir) = &self.dir else {
            return Ok((compile(engine, name, wasm)?, CacheOutcome::Compiled));
        };
        let path = dir.join(format!("{hash}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: the file is one this cache wrote with
            // `precompile_component` for an engine of the same compatibility
            // hash (it is in the file name); nobody else writes this folder.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(
                    transform = name,
                    path = %path.display(),
                    error = %format!("{e:#}"),
                    "precompiled artifact unusable, compiling again"
                ),
            }
        }
        let artifact = engine
            .precompile_component(wasm)
            .map_err(|e| compile_error(name, e))?;
        write_atomically(dir, &path, &artifact)?;
        // SAFETY: just produced by this engine.
        let component = unsafe { Component::deserialize(engine, &artifact) }
            .map_err(|e| compile_error(name, e))?;
        Ok((component, CacheOutcome::Compiled))
    }
}

fn compile(engine: &Engine, name: &str, wasm: &[u8]) -> Result<Component, RuntimeError> {
    Component::new(engine, wasm).map_err(|e| compile_error(name, e))
}

fn compile_error(name: &str, e: wasmtime::Error) -> RuntimeError {
    RuntimeError::Compile {
        transform: name.to_owned(),
        reason: format!("{e:#}"),
    }
}

/// Readers must never see half an artifact: write aside, then rename.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    let cache_error = |source| RuntimeError::Cache {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(cache_error)?;
    // A temporary name of its own per writer: two threads (or processes)
    // compiling the same component never write the same file.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(cache_error)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(cache_error)?;
    tmp.persist(path)
        .map(|_| ())
        .map_err(|e| cache_error(e.error))
}
