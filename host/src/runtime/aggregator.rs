//! A stateful transform over one window: `add` batches, then `finish`.

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::aggregator::Aggregator as Bindings;
use super::error::{GuestError, GuestFailure};
use super::limits::Limits;
use super::sandbox;
use super::state::{GuestState, Metadata};
use super::{Transform, TransformPre};
use crate::record::{KafkaRecord, OutputRecord};

/// Holds the window's state inside its instance. A failure loses that state,
/// so after one every later call reports the same error: a window's result
/// is all or nothing.
pub struct Aggregator {
    transform: Arc<Transform>,
    limits: Limits,
    state: Result<(Store<GuestState>, Bindings), GuestError>,
}

impl Aggregator {
    pub(super) fn new(transform: Arc<Transform>, limits: Limits, metadata: Metadata) -> Self {
        let state = instantiate(&transform, limits, metadata);
        Aggregator {
            transform,
            limits,
            state,
        }
    }

    pub fn transform(&self) -> &Arc<Transform> {
        &self.transform
    }

    pub fn add(&mut self, batch: &[KafkaRecord]) -> Result<(), GuestError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (store, bindings) = self.state.as_mut().map_err(|e| e.clone())?;
        sandbox::arm_deadline(store, &self.transform, self.limits);
        let result = bindings
            .sluice_transform_aggregate()
            .call_add(&mut *store, batch);
        self.settle(result, batch.first())
    }

    pub fn finish(mut self) -> Result<Vec<OutputRecord>, GuestError> {
        let (store, bindings) = self.state.as_mut().map_err(|e| e.clone())?;
        sandbox::arm_deadline(store, &self.transform, self.limits);
        let result = bindings
            .sluice_transform_aggregate()
            .call_finish(&mut *store);
        match result {
            Ok(records) => Ok(records),
            Err(error) => {
                let failure = sandbox::classify(store, error, self.limits);
                Err(self.transform.error(None, failure))
            }
        }
    }

    /// Turns a failed call into the aggregator's permanent error. The record
    /// named is the first of the batch being added: the guest's state cannot
    /// be replayed, so the failure is pinned to the batch, not a record.
    fn settle(
        &mut self,
        result: wasmtime::Result<()>,
        first: Option<&KafkaRecord>,
    ) -> Result<(), GuestError> {
        let Err(error) = result else { return Ok(()) };
        let Ok((store, _)) = self.state.as_mut() else {
            return Ok(());
        };
        let failure = sandbox::classify(store, error, self.limits);
        let error = self.transform.error(first, failure);
        self.state = Err(error.clone());
        Err(error)
    }
}

fn instantiate(
    transform: &Arc<Transform>,
    limits: Limits,
    metadata: Metadata,
) -> Result<(Store<GuestState>, Bindings), GuestError> {
    let TransformPre::Aggregator(pre) = &transform.pre else {
        return Err(transform.error(None, GuestFailure::Instantiate("not an aggregator".into())));
    };
    let mut store = sandbox::new_store(transform, limits, metadata);
    sandbox::arm_deadline(&mut store, transform, limits);
    let bindings = pre
        .instantiate(&mut store)
        .map_err(|e| transform.error(None, GuestFailure::Instantiate(format!("{e:#}"))))?;
    Ok((store, bindings))
}
