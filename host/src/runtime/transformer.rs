//! A stateless transform with one live instance, reused across batches.

use std::slice;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;

use super::bindings::transformer::Transformer as Bindings;
use super::error::{GuestError, GuestFailure};
use super::limits::{Budget, Limits};
use super::sandbox;
use super::state::{GuestState, Metadata};
use super::{Transform, TransformPre};
use crate::record::{KafkaRecord, Outcome};

pub struct Transformer {
    transform: Arc<Transform>,
    limits: Limits,
    metadata: Metadata,
    live: Option<(Store<GuestState>, Bindings)>,
}

/// The outcome of one input record, or why the guest could not give one.
pub type RecordResult = Result<Outcome, GuestError>;

impl Transformer {
    pub(super) fn new(transform: Arc<Transform>, limits: Limits, metadata: Metadata) -> Self {
        Transformer {
            transform,
            limits,
            metadata,
            live: None,
        }
    }

    pub fn transform(&self) -> &Arc<Transform> {
        &self.transform
    }

    /// One result per input record, in order, with no time budget (a run
    /// with nobody waiting on it: a dry run, a command). A trap, deadline or
    /// memory refusal in a batch call is pinned to its record by running the
    /// batch again one record at a time, so only the bad record fails.
    pub fn process(&mut self, batch: &[KafkaRecord]) -> Vec<RecordResult> {
        self.process_within(batch, &mut Budget::unlimited())
    }

    /// As [`Transformer::process`], within `budget`: results for the first
    /// records of `batch`, in order; the records after them could not be
    /// given their full deadline before the budget was spent and were not
    /// tried (the caller tries them later, or gives them up). A record that
    /// ran past its deadline is judged on the full deadline, never less.
    pub fn process_within(
        &mut self,
        batch: &[KafkaRecord],
        budget: &mut Budget,
    ) -> Vec<RecordResult> {
        let Some(allowed) = budget
            .allows(self.limits.deadline)
            .filter(|_| !batch.is_empty())
        else {
            return Vec::new();
        };
        let failure = match self.call(batch, allowed) {
            Ok(outcomes) => {
                budget.judged();
                return outcomes.into_iter().map(Ok).collect();
            }
            Err(failure) => failure,
        };
        if self.cut_short(&failure, allowed) {
            // Not the batch's fault: nothing is known about its records.
            return self.one_by_one(batch, budget);
        }
        if batch.len() == 1 || !isolatable(&failure) {
            budget.judged();
            let error = |r: &KafkaRecord| {
                let pinned = (batch.len() == 1).then_some(r);
                self.transform.error(pinned, failure.clone())
            };
            return batch.iter().map(|r| Err(error(r))).collect();
        }
        tracing::warn!(
            transform = self.transform.name(),
            version = self.transform.short_version(),
            records = batch.len(),
            error.kind = failure.kind(),
            "batch failed; running its records one by one to find the bad one"
        );
        self.one_by_one(batch, budget)
    }

    /// Each record alone, while the budget allows: a record that traps or
    /// runs past its full deadline fails alone; one cut short by what was
    /// left of the budget ends the run, untried with the records after it.
    fn one_by_one(&mut self, batch: &[KafkaRecord], budget: &mut Budget) -> Vec<RecordResult> {
        let mut results = Vec::with_capacity(batch.len());
        for record in batch {
            let Some(allowed) = budget.allows(self.limits.deadline) else {
                break;
            };
            let result = match self.call(slice::from_ref(record), allowed) {
                Ok(mut outcomes) => outcomes
                    .pop()
                    .ok_or_else(|| unreachable_contract(&self.transform, record)),
                Err(failure) if self.cut_short(&failure, allowed) => break,
                Err(failure) => Err(self.transform.error(Some(record), failure)),
            };
            budget.judged();
            results.push(result);
        }
        if results.len() < batch.len() {
            tracing::warn!(
                transform = self.transform.name(),
                version = self.transform.short_version(),
                tried = results.len(),
                untried = batch.len() - results.len(),
                "the time budget is spent; the records left were not tried"
            );
        }
        results
    }

    /// Whether `failure` is a deadline shorter than the record's own: the
    /// budget ran out, the record did not.
    fn cut_short(&self, failure: &GuestFailure, allowed: Duration) -> bool {
        matches!(failure, GuestFailure::Deadline(_)) && allowed < self.limits.deadline
    }

    /// One guest call, interrupted after `deadline`.
    fn call(
        &mut self,
        batch: &[KafkaRecord],
        deadline: Duration,
    ) -> Result<Vec<Outcome>, GuestFailure> {
        let limits = Limits {
            deadline,
            ..self.limits
        };
        let transform = self.transform.clone();
        let (store, bindings) = self.instance()?;
        sandbox::arm_deadline(store, &transform, limits);
        let started = std::time::Instant::now();
        let result = bindings
            .sluice_transform_transform()
            .call_process(&mut *store, batch);
        crate::metrics::guest_batch(
            transform.name(),
            transform.short_version(),
            started.elapsed(),
        );
        match result {
            Ok(outcomes) if outcomes.len() == batch.len() => {
                // A refusal the guest caught and recovered from (a Python
                // MemoryError handled in its code) must not label a later,
                // unrelated trap as the memory limit.
                store.data_mut().limiter.take_refusal();
                Ok(outcomes)
            }
            Ok(outcomes) => Err(GuestFailure::Contract(format!(
                "returned {} outcomes for a batch of {} records",
                outcomes.len(),
                batch.len()
            ))),
            Err(error) => {
                let failure = sandbox::classify(store, error, limits);
                self.live = None;
                Err(failure)
            }
        }
    }

    fn instance(&mut self) -> Result<&mut (Store<GuestState>, Bindings), GuestFailure> {
        if self.live.is_none() {
            let TransformPre::Transformer(pre) = &self.transform.pre else {
                return Err(GuestFailure::Instantiate("not a transformer".into()));
            };
            let mut store = sandbox::new_store(&self.transform, self.limits, self.metadata.clone());
            sandbox::arm_deadline(&mut store, &self.transform, self.limits);
            let bindings = pre
                .instantiate(&mut store)
                .map_err(|e| GuestFailure::Instantiate(format!("{e:#}")))?;
            self.live = Some((store, bindings));
        }
        self.live
            .as_mut()
            .ok_or_else(|| GuestFailure::Instantiate("no instance".into()))
    }
}

/// Failures worth retrying record by record: ones a single record can cause.
fn isolatable(failure: &GuestFailure) -> bool {
    matches!(
        failure,
        GuestFailure::Trap(_) | GuestFailure::Deadline(_) | GuestFailure::MemoryLimit { .. }
    )
}

fn unreachable_contract(transform: &Transform, record: &KafkaRecord) -> GuestError {
    transform.error(
        Some(record),
        GuestFailure::Contract("returned no outcome for the record".into()),
    )
}
