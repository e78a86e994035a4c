//! Names users give things, and the rule they follow: a leaf the registry,
//! the transform source and pipeline definitions all share, so a name is
//! checked the same way wherever it comes from.

mod rule;

use serde::{Deserialize, Serialize};

pub use rule::{BadName, NAME_RULE, TransformName, is_valid};

/// A transform by name: its active version, or a pinned one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TransformRef {
    Active(String),
    Pinned {
        name: String,
        /// A prefix (at least 8 hex digits) of the component's SHA-256.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
}

impl TransformRef {
    pub fn name(&self) -> &str {
        match self {
            TransformRef::Active(name) | TransformRef::Pinned { name, .. } => name,
        }
    }

    pub fn pinned_version(&self) -> Option<&str> {
        match self {
            TransformRef::Active(_) => None,
            TransformRef::Pinned { version, .. } => version.as_deref(),
        }
    }
}
