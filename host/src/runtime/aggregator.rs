//! A stateful transform over one window: `add` batches, then `finish`.
//!
//! Isolated as transforms are: a record that traps, loops past its
//! deadline or passes the memory cap is refused alone, and the window goes
//! on without it. A trap costs the instance and with it the window's state,
//! so every batch the window took is kept in a [`Journal`]; after a trap a
//! fresh instance is given the journal again, then the failed batch one
//! record at a time, so the record that traps is found and left out.

use std::slice;
use std::sync::Arc;

use wasmtime::Store;

use super::bindings;
use super::columns::{self, BatchEncoder};
use super::error::{GuestError, GuestFailure};
use super::journal::{Journal, JournalError};
use super::limits::Limits;
use super::sandbox;
use super::state::{GuestState, Metadata};
use super::{Transform, TransformPre};
use crate::record::{KafkaRecord, OutputRecord};

pub struct Aggregator {
    transform: Arc<Transform>,
    limits: Limits,
    metadata: Metadata,
    /// The live instance; `None` after a failure, until it is rebuilt.
    live: Option<(Store<GuestState>, Exports)>,
    /// A 0.2.0 guest's batch buffers, reused from one call to the next.
    encoder: BatchEncoder,
    /// Every batch the window holds, for rebuilding it.
    journal: Journal,
    /// Set when the window cannot go on (it cannot be instantiated, or the
    /// journal cannot be read back): every later call reports it.
    broken: Option<GuestError>,
}

impl Aggregator {
    pub(super) fn new(transform: Arc<Transform>, limits: Limits, metadata: Metadata) -> Self {
        Aggregator {
            transform,
            limits,
            metadata,
            live: None,
            encoder: BatchEncoder::default(),
            journal: Journal::new(),
            broken: None,
        }
    }

    pub fn transform(&self) -> &Arc<Transform> {
        &self.transform
    }

    /// Adds `batch` to the window. The records refused (each pinned to its
    /// record: it trapped, ran past the deadline or the memory cap) are
    /// returned; the window holds all the others. An error means the
    /// window itself is lost.
    pub fn add(&mut self, batch: &[KafkaRecord]) -> Result<Vec<GuestError>, GuestError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        match self.call_add(batch) {
            Ok(()) => {
                self.keep(batch)?;
                Ok(Vec::new())
            }
            Err(failure) if !isolatable(&failure) => Err(self.break_window(None, failure)),
            Err(failure) => {
                tracing::warn!(
                    transform = self.transform.name(),
                    version = self.transform.short_version(),
                    records = batch.len(),
                    error.kind = failure.kind(),
                    "aggregator failed on a batch; rebuilding its window and adding the batch \
                     record by record to find the bad one"
                );
                self.add_one_by_one(batch, failure)
            }
        }
    }

    /// Rebuilds the window from the journal, then adds each record of
    /// `batch` alone; one that fails is refused and the window rebuilt
    /// again before the next.
    fn add_one_by_one(
        &mut self,
        batch: &[KafkaRecord],
        failure: GuestFailure,
    ) -> Result<Vec<GuestError>, GuestError> {
        if let [record] = batch {
            // Already alone: that record is the bad one.
            return Ok(vec![self.refuse(record, failure)?]);
        }
        self.rebuild()?;
        let mut refused = Vec::new();
        for record in batch {
            match self.call_add(slice::from_ref(record)) {
                Ok(()) => self.keep(slice::from_ref(record))?,
                Err(failure) if isolatable(&failure) => {
                    refused.push(self.refuse(record, failure)?);
                }
                Err(failure) => return Err(self.break_window(Some(record), failure)),
            }
        }
        Ok(refused)
    }

    /// The error for `record`, which is left out of the window; the
    /// window is rebuilt without it.
    fn refuse(
        &mut self,
        record: &KafkaRecord,
        failure: GuestFailure,
    ) -> Result<GuestError, GuestError> {
        let error = self.transform.error(Some(record), failure);
        tracing::warn!(%error, "record left out of the aggregate");
        self.rebuild()?;
        Ok(error)
    }

    pub fn finish(mut self) -> Result<Vec<OutputRecord>, GuestError> {
        if let Some(broken) = self.broken.take() {
            return Err(broken);
        }
        if self.live.is_none() {
            self.rebuild()?;
        }
        let limits = self.limits;
        let transform = self.transform.clone();
        let Some((store, exports)) = self.live.as_mut() else {
            return Err(transform.error(None, GuestFailure::Instantiate("no instance".into())));
        };
        sandbox::arm_deadline(store, &transform, limits);
        let result = match exports {
            Exports::V0_1(exports) => exports
                .sluice_transform_aggregate()
                .call_finish(&mut *store)
                .map(Ok),
            Exports::V0_2(exports) => exports
                .sluice_transform_aggregate()
                .call_finish(&mut *store)
                .map(columns::output_records),
        };
        match result {
            Ok(checked) => checked.map_err(|failure| transform.error(None, failure)),
            Err(error) => {
                let failure = sandbox::classify(store, error, limits);
                Err(transform.error(None, failure))
            }
        }
    }

    /// One `add` call on the live instance (made first when there is
    /// none); after a failure the instance is dropped.
    fn call_add(&mut self, batch: &[KafkaRecord]) -> Result<(), GuestFailure> {
        let limits = self.limits;
        let transform = self.transform.clone();
        if self.live.is_none() {
            self.live = Some(instantiate(&transform, limits, self.metadata.clone())?);
        }
        let Some((store, exports)) = self.live.as_mut() else {
            return Err(GuestFailure::Instantiate("no instance".into()));
        };
        sandbox::arm_deadline(store, &transform, limits);
        let result = match exports {
            Exports::V0_1(exports) => exports
                .sluice_transform_aggregate()
                .call_add(&mut *store, batch),
            Exports::V0_2(exports) => {
                let encoded = self.encoder.encode(batch)?;
                exports
                    .sluice_transform_aggregate()
                    .call_add(&mut *store, encoded)
            }
        };
        match result {
            Ok(()) => {
                store.data_mut().limiter.take_refusal();
                Ok(())
            }
            Err(error) => {
                let failure = sandbox::classify(store, error, limits);
                self.live = None;
                Err(failure)
            }
        }
    }

    /// A fresh instance given every batch of the journal again.
    fn rebuild(&mut self) -> Result<(), GuestError> {
        self.live = None;
        match instantiate(&self.transform, self.limits, self.metadata.clone()) {
            Ok(live) => self.live = Some(live),
            Err(failure) => return Err(self.break_window(None, failure)),
        }
        let mut journal = std::mem::take(&mut self.journal);
        let mut replay_failure = None;
        let replayed = journal.replay(|batch| {
            self.call_add(&batch).map_err(|failure| {
                replay_failure = Some(failure);
                JournalError::new("a batch the window took before failed on replay")
            })
        });
        self.journal = journal;
        match (replayed, replay_failure) {
            (Ok(()), _) => Ok(()),
            // The window's own past no longer goes in (a guest that is not
            // deterministic): it cannot be rebuilt.
            (Err(_), Some(failure)) => Err(self.break_window(None, failure)),
            (Err(error), None) => Err(self.break_window(
                None,
                GuestFailure::Instantiate(format!("rebuilding the window: {error}")),
            )),
        }
    }

    /// Journals records the live instance took.
    fn keep(&mut self, batch: &[KafkaRecord]) -> Result<(), GuestError> {
        self.journal.append(batch).map_err(|error| {
            self.break_window(
                None,
                GuestFailure::Instantiate(format!("keeping the window's records: {error}")),
            )
        })
    }

    /// Marks the window lost with `failure`; the error returned is the one
    /// every later call gets.
    fn break_window(&mut self, record: Option<&KafkaRecord>, failure: GuestFailure) -> GuestError {
        let error = self.transform.error(record, failure);
        self.live = None;
        self.broken = Some(error.clone());
        error
    }
}

/// Failures one record can cause: worth isolating.
fn isolatable(failure: &GuestFailure) -> bool {
    matches!(
        failure,
        GuestFailure::Trap(_) | GuestFailure::Deadline(_) | GuestFailure::MemoryLimit { .. }
    )
}

/// A live instance's exports, in the contract version it was built against.
enum Exports {
    V0_1(bindings::aggregator::Aggregator),
    V0_2(bindings::v2::aggregator::Aggregator),
}

fn instantiate(
    transform: &Arc<Transform>,
    limits: Limits,
    metadata: Metadata,
) -> Result<(Store<GuestState>, Exports), GuestFailure> {
    let mut store = sandbox::new_store(transform, limits, metadata);
    sandbox::arm_deadline(&mut store, transform, limits);
    let instantiate_error = |e: wasmtime::Error| GuestFailure::Instantiate(format!("{e:#}"));
    let exports = match &transform.pre {
        TransformPre::Aggregator(pre) => {
            Exports::V0_1(pre.instantiate(&mut store).map_err(instantiate_error)?)
        }
        TransformPre::AggregatorV2(pre) => {
            Exports::V0_2(pre.instantiate(&mut store).map_err(instantiate_error)?)
        }
        TransformPre::Transformer(_) | TransformPre::TransformerV2(_) => {
            return Err(GuestFailure::Instantiate("not an aggregator".into()));
        }
    };
    Ok((store, exports))
}
