//! A running pipeline's transform, kept at the version the registry has
//! active: the one way the `sluice enrich` worker and the Kafka-trigger
//! route follow activations, so "uploaded without redeploying" holds on
//! both. A transform named in a registry, not pinned to a version, is
//! watched; a pinned one, or one from a folder, stays as loaded.

use std::sync::Arc;
use std::time::Duration;

use super::{SourceError, TransformSource};
use crate::names::TransformRef;
use crate::registry::TransformWatch;
use crate::runtime::Transform;

/// How often the registry is asked whether another version is active,
/// unless a caller says otherwise: a newly activated version takes effect
/// within this and the time to load it (its precompiled artifact, fetched
/// and checked; compiling only where no instance of this engine
/// configuration has compiled it yet).
pub const DEFAULT_RELOAD: Duration = Duration::from_millis(500);

pub struct Followed {
    transform: Arc<Transform>,
    watch: Option<TransformWatch>,
}

impl Followed {
    /// Loads what `reference` names from `source` and, when it is the
    /// registry's active version, watches for the next one every
    /// `interval`.
    pub fn start(
        source: &TransformSource,
        reference: &TransformRef,
        interval: Duration,
    ) -> Result<Self, SourceError> {
        let transform = source.load(reference)?;
        let watch = match (source.registry_store(), reference.pinned_version()) {
            (Some(registry), None) => Some(TransformWatch::spawn(
                registry.clone(),
                source.runtime().clone(),
                reference.name().to_owned(),
                transform.version().to_owned(),
                interval.max(Duration::from_millis(50)),
            )),
            _ => None,
        };
        Ok(Followed { transform, watch })
    }

    /// The version in use.
    pub fn transform(&self) -> &Arc<Transform> {
        &self.transform
    }

    /// The newly activated version, once, when there is one: the caller
    /// switches to it between batches, never inside one.
    pub fn update(&mut self) -> Option<Arc<Transform>> {
        let next = self.watch.as_ref()?.take_update()?;
        crate::metrics::activation(next.name());
        self.transform = next.clone();
        Some(next)
    }
}
