//! The names of a table's log files, and the `_last_checkpoint` pointer:
//! what the log's reader, its writer and its checkpoints all share.

use serde::{Deserialize, Serialize};

use crate::export::layout;

/// `<table>/_delta_log/<version, 20 digits>.json`.
pub fn commit_key(topic: &str, version: u64) -> String {
    format!("{}/{version:020}.json", layout::delta_log(topic))
}

/// `<table>/_delta_log/<version, 20 digits>.checkpoint.parquet`.
pub fn checkpoint_key(topic: &str, version: u64) -> String {
    format!(
        "{}/{version:020}.checkpoint.parquet",
        layout::delta_log(topic)
    )
}

pub fn last_checkpoint_key(topic: &str) -> String {
    format!("{}/_last_checkpoint", layout::delta_log(topic))
}

/// The `_last_checkpoint` file (`PROTOCOL.md`, "Last Checkpoint File").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastCheckpoint {
    pub version: u64,
    /// Actions in the checkpoint.
    pub size: u64,
    /// Set for multi-part checkpoints, which Sluice does not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_in_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_of_add_files: Option<u64>,
}
