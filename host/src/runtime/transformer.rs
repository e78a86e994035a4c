//! A stateless transform with one live instance, reused across batches.

use std::slice;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;

use super::bindings;
use super::columns::{self, BatchEncoder};
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
    live: Option<(Store<GuestState>, Exports)>,
    /// A 0.2.0 guest's batch buffers, reused from one call to the next.
    encoder: BatchEncoder,
}

/// A live instance's exports, in the contract version it was built against.
enum Exports {
    V0_1(bindings::transformer::Transformer),
    V0_2(bindings::v2::transformer::Transformer),
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
            encoder: BatchEncoder::default(),
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
        let (store, exports) = instance(&mut self.live, &transform, self.limits, &self.metadata)?;
        sandbox::arm_deadline(store, &transform, limits);
        let started = std::time::Instant::now();
        // The guest's answer, checked against the contract.
        let result = match exports {
            Exports::V0_1(exports) => exports
                .sluice_transform_transform()
                .call_process(&mut *store, batch)
                .map(|outcomes| match outcomes.len() == batch.len() {
                    true => Ok(outcomes),
                    false => Err(GuestFailure::Contract(format!(
                        "returned {} outcomes for a batch of {} records",
                        outcomes.len(),
                        batch.len()
                    ))),
                }),
            Exports::V0_2(exports) => {
                let encoded = self.encoder.encode(batch)?;
                exports
                    .sluice_transform_transform()
                    .call_process(&mut *store, encoded)
                    .map(|results| columns::outcomes(results, batch.len()))
            }
        };
        crate::metrics::guest_batch(
            transform.name(),
            transform.short_version(),
            started.elapsed(),
        );
        match result {
            Ok(checked) => {
                // A refusal the guest caught and recovered from (a Python
                // MemoryError handled in its code) must not label a later,
                // unrelated trap as the memory limit.
                store.data_mut().limiter.take_refusal();
                checked
            }
            Err(error) => {
                let failure = sandbox::classify(store, error, limits);
                self.live = None;
                Err(failure)
            }
        }
    }
}

/// The live instance, made first when there is none.
fn instance<'a>(
    live: &'a mut Option<(Store<GuestState>, Exports)>,
    transform: &Arc<Transform>,
    limits: Limits,
    metadata: &Metadata,
) -> Result<&'a mut (Store<GuestState>, Exports), GuestFailure> {
    if let Some(live) = live {
        return Ok(live);
    }
    let mut store = sandbox::new_store(transform, limits, metadata.clone());
    sandbox::arm_deadline(&mut store, transform, limits);
    let instantiate_error = |e: wasmtime::Error| GuestFailure::Instantiate(format!("{e:#}"));
    let exports = match &transform.pre {
        TransformPre::Transformer(pre) => {
            Exports::V0_1(pre.instantiate(&mut store).map_err(instantiate_error)?)
        }
        TransformPre::TransformerV2(pre) => {
            Exports::V0_2(pre.instantiate(&mut store).map_err(instantiate_error)?)
        }
        TransformPre::Aggregator(_) | TransformPre::AggregatorV2(_) => {
            return Err(GuestFailure::Instantiate("not a transformer".into()));
        }
    };
    Ok(live.insert((store, exports)))
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
