//! What the command line and the app share about transforms: the runtime
//! they run in, where the guest build puts them, and loading an explicit
//! `.wasm` file (only ever through a flag that says it is a file; a name is
//! looked up by `sluice_host::transforms::TransformSource`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use sluice_host::runtime::{Runtime, RuntimeConfig, Transform};

/// `$SLUICE_TRANSFORMS_DIR`, else where `scripts/build-guests.sh` puts them.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_TRANSFORMS_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sluice/target")))
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("wasm32-wasip2").join("guest")
}

pub fn runtime() -> anyhow::Result<Runtime> {
    Runtime::new(RuntimeConfig::default()).context("starting the WebAssembly runtime")
}

/// A `.wasm` file given with a `--wasm` flag.
pub fn load_file(runtime: &Runtime, path: &Path) -> anyhow::Result<Arc<Transform>> {
    runtime
        .load_file(path)
        .with_context(|| format!("loading the transform file {}", path.display()))
}
