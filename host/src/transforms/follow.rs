//! A running pipeline's transform, kept at the version the registry has
//! active: the one way the `sluice enrich` worker and the Kafka-trigger
//! route follow activations, so "uploaded without redeploying" holds on
//! both. A transform named in a registry, not pinned to a version, is
//! watched; a pinned one, or one from a folder, stays as loaded.
//!
//! The watch also follows the transform's shadow version (see
//! `crate::shadow`): [`Followed::shadow_update`] hands a newly named one
//! over, with a sink that stores this instance's report in the registry as
//! often as the registry is polled, and says when the shadow run ended.

use std::sync::Arc;
use std::time::Duration;

use super::{SourceError, TransformSource};
use crate::health::default_worker_name;
use crate::names::TransformRef;
use crate::registry::TransformWatch;
use crate::runtime::Transform;
use crate::shadow::{ReportSink, Shadowing};

/// How often the registry is asked whether another version is active,
/// unless a caller says otherwise: a newly activated version takes effect
/// within this and the time to load it (its precompiled artifact, fetched
/// and checked; compiling only where no instance of this engine
/// configuration has compiled it yet).
pub const DEFAULT_RELOAD: Duration = Duration::from_millis(500);

pub struct Followed {
    transform: Arc<Transform>,
    watch: Option<TransformWatch>,
    /// Where this instance's shadow reports go (with a registry).
    reports: Option<Arc<dyn ReportSink>>,
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
        Self::start_as(source, reference, interval, default_worker_name())
    }

    /// As [`Followed::start`], naming this instance `instance` in shadow
    /// reports (a worker's instance id).
    pub fn start_as(
        source: &TransformSource,
        reference: &TransformRef,
        interval: Duration,
        instance: String,
    ) -> Result<Self, SourceError> {
        let transform = source.load(reference)?;
        let interval = interval.max(Duration::from_millis(50));
        let (watch, reports) = match (source.registry_store(), reference.pinned_version()) {
            (Some(registry), None) => (
                Some(TransformWatch::spawn(
                    registry.clone(),
                    source.runtime().clone(),
                    reference.name().to_owned(),
                    transform.version().to_owned(),
                    interval,
                )),
                Some(registry.shadow_sink(instance, interval)),
            ),
            _ => (None, None),
        };
        Ok(Followed {
            transform,
            watch,
            reports,
        })
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

    /// A change of the shadow version, once, when there is one:
    /// `Some(None)` when the shadow run ended. The caller starts or ends
    /// its shadow between batches, never inside one.
    pub fn shadow_update(&mut self) -> Option<Option<Shadowing>> {
        let next = self.watch.as_ref()?.take_shadow()?;
        Some(next.map(|transform| Shadowing {
            transform,
            sink: self.reports.clone(),
        }))
    }
}
