//! What can go wrong loading or running a transform. Every error names the
//! transform and its version; errors from a call also name the record.

use std::path::PathBuf;
use std::time::Duration;

use crate::record::RecordRef;

/// Loading or compiling a transform failed. Nothing ran.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    #[error("transform `{transform}` is not a valid WebAssembly component: {reason}")]
    Compile { transform: String, reason: String },
    #[error(
        "transform `{transform}` implements neither the `transformer` nor the `aggregator` \
         world of sluice:transform@0.2.0 or @0.1.0: {reason}"
    )]
    WrongWorld { transform: String, reason: String },
    #[error("transform `{transform}` is {actual}, but {expected} was asked for")]
    UnexpectedWorld {
        transform: String,
        expected: super::World,
        actual: super::World,
    },
    #[error("reading transform file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("transform `{transform}` has no version `{version}`: a version is 64 hex digits")]
    BadVersion { transform: String, version: String },
    #[error("the precompiled artifact of transform `{transform}` was refused: {reason}")]
    ArtifactRefused { transform: String, reason: String },
}

/// One call into a guest failed. The host is unharmed; the instance that
/// failed is discarded and the next call gets a fresh one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("transform `{transform}` (version {version}){}: {failure}", on_record(.record))]
pub struct GuestError {
    pub transform: String,
    pub version: String,
    /// The record being processed, when the failure could be pinned to one.
    pub record: Option<RecordRef>,
    pub failure: GuestFailure,
}

fn on_record(record: &Option<RecordRef>) -> String {
    match record {
        Some(r) => format!(" failed on {r}"),
        None => " failed".to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GuestFailure {
    #[error("trapped: {0}")]
    Trap(String),
    #[error("ran past its deadline of {0:?} and was interrupted")]
    Deadline(Duration),
    #[error("tried to grow its memory to {desired} bytes, past its cap of {cap} bytes")]
    MemoryLimit { cap: usize, desired: usize },
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    #[error("broke the contract: {0}")]
    Contract(String),
}

impl GuestFailure {
    /// A short machine-readable name, for dead-letter headers and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            GuestFailure::Trap(_) => "trap",
            GuestFailure::Deadline(_) => "deadline",
            GuestFailure::MemoryLimit { .. } => "memory_limit",
            GuestFailure::Instantiate(_) => "instantiate",
            GuestFailure::Contract(_) => "contract",
        }
    }
}
