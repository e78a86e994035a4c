//! Shadow runs: a new version of a transform tried on live traffic before
//! it is promoted. Every instance running the active version also runs the
//! shadow version on the same batches, after the active one and within a
//! share of its CPU time, and compares each record's two outcomes
//! (`compare.rs`, pure); what differs is counted and sampled per instance
//! (`report.rs`) and stored in the registry, where a reader gathers the
//! instances' reports. The shadow's outputs are never produced.
//!
//! The registry's manifest says which version shadows; `transforms::Followed`
//! hands it to the running pipeline as a [`Shadowing`]; the enricher runs
//! it as a [`Shadow`] (`run.rs`).

mod compare;
mod report;
mod run;

use std::sync::Arc;

pub use compare::{Difference, Kind, compare};
pub use report::{MAX_SAMPLES, Sample, ShadowReport};
pub use run::{DEFAULT_CPU_PERCENT, Shadow};

use crate::runtime::Transform;

/// A version to shadow the active one with, and where its report goes.
#[derive(Clone)]
pub struct Shadowing {
    pub transform: Arc<Transform>,
    pub sink: Option<Arc<dyn ReportSink>>,
}

/// Where an instance's shadow report goes (the registry's, see
/// `registry::Registry::shadow_sink`).
pub trait ReportSink: Send + Sync {
    /// This instance's name, as reports show it.
    fn instance(&self) -> String;
    /// The report after a batch: stored now and then, never holding the
    /// batch up.
    fn offer(&self, report: &ShadowReport);
    /// The report as the shadow ends: stored now, briefly waited for.
    fn last(&self, report: &ShadowReport);
}
