//! Finding a transform by name: a path to a `.wasm` file, or a name looked up
//! in the transforms folder (until the registry serves them).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use sluice_host::enrich::TransformRef;
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

/// Loads `name_or_path`: an existing file, or `<dir>/<name>.wasm` (a `-` in
/// the name may be `_` in the file name, as cargo writes it).
pub fn load(runtime: &Runtime, name_or_path: &str, dir: &Path) -> anyhow::Result<Arc<Transform>> {
    let as_path = Path::new(name_or_path);
    if as_path.is_file() {
        return runtime
            .load_file(as_path)
            .with_context(|| format!("loading transform {}", as_path.display()));
    }
    let candidates = [
        dir.join(format!("{name_or_path}.wasm")),
        dir.join(format!("{}.wasm", name_or_path.replace('-', "_"))),
    ];
    let Some(file) = candidates.iter().find(|c| c.is_file()) else {
        bail!(
            "no transform `{name_or_path}`: not a file, and none of {} exists \
             (build the guests with scripts/build-guests.sh or set SLUICE_TRANSFORMS_DIR)",
            candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    runtime
        .load(name_or_path, &wasm)
        .with_context(|| format!("loading transform {}", file.display()))
}

/// Loads the transform a pipeline names, checking a pinned version against
/// the component's hash.
pub fn load_ref(
    runtime: &Runtime,
    reference: &TransformRef,
    dir: &Path,
) -> anyhow::Result<Arc<Transform>> {
    let transform = load(runtime, reference.name(), dir)?;
    if let Some(pinned) = reference.pinned_version()
        && !transform.version().starts_with(pinned)
    {
        bail!(
            "transform `{}` is pinned to version {pinned}, but the one found is {}",
            reference.name(),
            transform.short_version()
        );
    }
    Ok(transform)
}
