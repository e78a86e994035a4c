//! A shadow version running beside the active one: the same batches, after
//! the active version has given its outcomes, in an instance of its own
//! (its own limits and deadlines, so a trap, a loop or a memory refusal
//! costs only the shadow), within a CPU budget, its outputs never produced.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::compare::compare;
use super::report::ShadowReport;
use super::{ReportSink, Shadowing};
use crate::record::KafkaRecord;
use crate::runtime::{Budget, Limits, Metadata, RecordResult, RuntimeError, Transformer};

/// The shadow's share of the active version's time, unless a pipeline says
/// otherwise (`limits.shadow_cpu_percent`).
pub const DEFAULT_CPU_PERCENT: u32 = 50;

pub struct Shadow {
    transformer: Transformer,
    /// The shadow's time may reach this share of the active version's.
    share: f64,
    active_time: Duration,
    shadow_time: Duration,
    report: ShadowReport,
    sink: Option<Arc<dyn ReportSink>>,
}

impl Shadow {
    /// `shadowing` beside the version `active`, with the pipeline's
    /// `limits` and `metadata`, within `cpu_percent` of the active
    /// version's time.
    pub fn start(
        shadowing: Shadowing,
        active: &str,
        limits: Limits,
        metadata: Metadata,
        cpu_percent: u32,
    ) -> Result<Self, RuntimeError> {
        let Shadowing { transform, sink } = shadowing;
        let instance = sink.as_ref().map_or("here".to_owned(), |s| s.instance());
        let report = ShadowReport::new(transform.name(), active, transform.version(), &instance);
        tracing::info!(
            transform = transform.name(),
            shadow = transform.short_version(),
            cpu_percent,
            "shadow run started: the shadow version runs on every batch too, its outputs compared, never produced"
        );
        Ok(Shadow {
            transformer: transform.transformer(limits, metadata)?,
            share: f64::from(cpu_percent) / 100.0,
            active_time: Duration::ZERO,
            shadow_time: Duration::ZERO,
            report,
            sink,
        })
    }

    /// Compares with `active`, a newly activated version, from now on: the
    /// report so far was about another pair.
    pub fn against(&mut self, active: &str) {
        let fresh = ShadowReport::new(
            &self.report.transform,
            active,
            &self.report.shadow,
            self.report.instances.first().map_or("here", String::as_str),
        );
        self.report = fresh;
        self.active_time = Duration::ZERO;
        self.shadow_time = Duration::ZERO;
    }

    pub fn report(&self) -> &ShadowReport {
        &self.report
    }

    /// Runs the records the active version gave `results` for (the first
    /// `results.len()` of `inputs`, which took it `took`) through the
    /// shadow and compares, unless the shadow has used its share of time.
    pub fn follow(&mut self, inputs: &[KafkaRecord], results: &[RecordResult], took: Duration) {
        self.active_time += took;
        self.report.active_ms = self.active_time.as_millis() as u64;
        let inputs = inputs.get(..results.len()).unwrap_or(inputs);
        if inputs.is_empty() {
            return;
        }
        let allowed = self.active_time.mul_f64(self.share);
        let left = allowed.saturating_sub(self.shadow_time);
        if left.is_zero() {
            self.report.skipped += inputs.len() as u64;
            self.report.skipped_batches += 1;
        } else {
            // Its own time budget, what is left of its share: a shadow
            // that loops costs a deadline at most, then waits its turn.
            let mut budget = Budget::new(left);
            let started = Instant::now();
            let shadowed = self.transformer.process_within(inputs, &mut budget);
            self.shadow_time += started.elapsed();
            self.report.shadow_ms = self.shadow_time.as_millis() as u64;
            self.report.skipped += (inputs.len() - shadowed.len()) as u64;
            self.report.shadowed_batches += 1;
            for ((input, active), shadow) in inputs.iter().zip(results).zip(&shadowed) {
                let difference = compare(active, shadow);
                self.report.record(input, active, shadow, difference);
            }
        }
        self.report.updated_ms = crate::clock::now_ms();
    }

    /// Offers the report to the sink, which stores it now and then: after
    /// every step.
    pub fn offer(&self) {
        if let Some(sink) = &self.sink {
            sink.offer(&self.report);
        }
    }

    /// Stores the report as it is now, as the shadow ends.
    pub fn finish(&self) {
        if let Some(sink) = &self.sink {
            sink.last(&self.report);
        }
        tracing::info!(
            transform = self.report.transform,
            shadow = self.report.shadow.get(..12).unwrap_or_default(),
            compared = self.report.compared,
            differing = self.report.differing(),
            skipped = self.report.skipped,
            "shadow run ended"
        );
    }
}
