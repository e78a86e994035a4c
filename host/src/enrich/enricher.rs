//! The core both entry points share (the `sluice enrich` worker and the
//! Kafka-trigger function): records in, records to produce out, plus the
//! input records that are finished once those are acknowledged.

use std::sync::Arc;
use std::time::Instant;

use super::definition::{EnrichFormat, OnTimeout, PipelineDefinition};
use super::join::{Added, Incomplete, JoinBuffer, Rejected};
use crate::kafka::{Forgotten, InFlight, KafkaError, ProduceRecord, Producer};
use crate::pipeline::{Routed, Routing};
use crate::record::{KafkaRecord, RecordRef};
use crate::retry::Backoff;
use crate::runtime::{Budget, GuestFailure, RuntimeError, Transform, Transformer};

/// Counts of what happened to input records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EnrichStats {
    pub read: u64,
    /// Records (joined or not) the transform emitted something for.
    pub emitted: u64,
    /// Records produced to output topics.
    pub produced: u64,
    pub dropped: u64,
    pub dead_lettered: u64,
    /// Ids whose records arrived from every input.
    pub joined: u64,
    /// Ids given up before every input arrived.
    pub incomplete: u64,
}

impl EnrichStats {
    /// The counts the metrics record.
    pub fn counts(&self) -> crate::metrics::RecordCounts {
        crate::metrics::RecordCounts {
            read: self.read,
            produced: self.produced,
            dead_lettered: self.dead_lettered,
            dropped: self.dropped,
        }
    }

    pub fn add(&mut self, other: &EnrichStats) {
        self.read += other.read;
        self.emitted += other.emitted;
        self.produced += other.produced;
        self.dropped += other.dropped;
        self.dead_lettered += other.dead_lettered;
        self.joined += other.joined;
        self.incomplete += other.incomplete;
    }
}

/// The result of one step: produce `produce`, wait for every
/// acknowledgement, then count `finished` as done.
#[derive(Debug, Default)]
pub struct Step {
    pub produce: Vec<ProduceRecord>,
    pub finished: Vec<RecordRef>,
    pub stats: EnrichStats,
    /// Time spent in the guest.
    pub guest: std::time::Duration,
    /// Where each record of `produce` came from: `(end, member)` says the
    /// records before index `end` (after the previous entry's) are the
    /// outputs of the input whose first member is `finished[member]`.
    origins: Vec<(usize, usize)>,
    /// Records that ran past their deadline (and were dead-lettered).
    pub overran: Vec<RecordRef>,
}

impl Step {
    /// The input record (its first member, for a joined record) the
    /// record `produce[index]` was made from.
    pub fn source_of(&self, index: usize) -> Option<&RecordRef> {
        let at = self.origins.partition_point(|(end, _)| *end <= index);
        let (_, member) = self.origins.get(at)?;
        self.finished.get(*member)
    }

    /// Notes that the records produced since the last call come from the
    /// input whose members start at `finished[member]`.
    fn produced_from(&mut self, member: usize) {
        let end = self.produce.len();
        if self.origins.last().is_none_or(|(last, _)| *last < end) {
            self.origins.push((end, member));
        }
    }
}

/// A record for the transform, and the inputs it stands for.
struct Ready {
    record: KafkaRecord,
    members: Vec<RecordRef>,
}

pub struct Enricher {
    definition: PipelineDefinition,
    transformer: Transformer,
    routing: Routing,
    join: Option<JoinBuffer>,
    /// Records a step's time budget left untried, in order: the next step
    /// tries them first. Unfinished, so nothing commits past them.
    carried: Vec<Ready>,
}

impl Enricher {
    pub fn new(
        definition: PipelineDefinition,
        transform: &Arc<Transform>,
    ) -> Result<Self, RuntimeError> {
        let transformer =
            transform.transformer(definition.limits.limits(), definition.metadata_pairs())?;
        let routing = Routing {
            outputs: definition.outputs.clone(),
            dead_letter: definition.dead_letter.clone(),
        };
        let join = definition
            .join
            .clone()
            .map(|spec| JoinBuffer::new(spec, definition.inputs.clone()));
        Ok(Enricher {
            definition,
            transformer,
            routing,
            join,
            carried: Vec::new(),
        })
    }

    pub fn definition(&self) -> &PipelineDefinition {
        &self.definition
    }

    pub fn transform(&self) -> &Arc<Transform> {
        self.transformer.transform()
    }

    /// Uses `transform` from the next step on; the step in progress, if
    /// any, finished with the old one.
    pub fn swap_transform(&mut self, transform: &Arc<Transform>) -> Result<(), RuntimeError> {
        self.transformer = transform.transformer(
            self.definition.limits.limits(),
            self.definition.metadata_pairs(),
        )?;
        Ok(())
    }

    /// Ids waiting in the join.
    pub fn pending(&self) -> usize {
        self.join.as_ref().map_or(0, JoinBuffer::pending)
    }

    /// What the records waiting in the join hold (`join.max_pending_bytes`).
    pub fn pending_bytes(&self) -> usize {
        self.join.as_ref().map_or(0, JoinBuffer::pending_bytes)
    }

    /// When the next waiting id times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.join.as_ref().and_then(JoinBuffer::next_deadline)
    }

    /// Records the last step's time budget left untried.
    pub fn carried(&self) -> usize {
        self.carried.len()
    }

    /// Forgets what waits here from the `forgotten` partitions (join
    /// members, records carried to the next step): after a rebalance they
    /// are read again, by their next owner or here after a rewind. A joined
    /// record carried is kept while one of its members is not forgotten.
    pub fn forget(&mut self, forgotten: &Forgotten) {
        if let Some(join) = &mut self.join {
            join.forget(forgotten);
        }
        self.carried.retain(|ready| {
            !ready
                .members
                .iter()
                .all(|m| forgotten.contains(&m.topic, m.partition))
        });
    }

    /// Dead-letters the records the step's time budget left untried (kind
    /// `budget`), for a caller with no next step: a trigger invocation.
    pub fn give_up_carried(&mut self, step: &mut Step) {
        if self.carried.is_empty() {
            return;
        }
        let reason = self.budget_reason(&step.overran);
        for ready in std::mem::take(&mut self.carried) {
            self.routing.dead_letter(
                self.transformer.transform(),
                &ready.record,
                "budget",
                &reason,
                &mut step.produce,
            );
            step.stats.dead_lettered += 1;
            step.produced_from(step.finished.len());
            step.finished.extend(ready.members);
        }
    }

    /// Why records were not tried: the budget, the deadline, and the
    /// records that spent it.
    fn budget_reason(&self, overran: &[RecordRef]) -> String {
        const NAMED: usize = 10;
        let limits = &self.definition.limits;
        let mut looped: Vec<String> = overran
            .iter()
            .take(NAMED)
            .map(ToString::to_string)
            .collect();
        if overran.len() > NAMED {
            looped.push(format!("and {} more", overran.len() - NAMED));
        }
        format!(
            "not tried: the batch's time budget of {} ms (limits.budget_ms) was spent before \
             this record could be given its full deadline of {} ms; records of the batch that \
             ran past the deadline: {}",
            limits.budget().as_millis(),
            limits.deadline_ms,
            if looped.is_empty() {
                "none".to_owned()
            } else {
                looped.join(", ")
            }
        )
    }

    /// Runs `records` through the join (if any) and the transform, and gives
    /// up the ids whose time ran out by `now`.
    pub fn process(&mut self, mut records: Vec<KafkaRecord>, now: Instant) -> Step {
        let mut step = Step::default();
        if self.join.is_some() {
            // A poll hands out records partition by partition; the join
            // takes them in event-time order, as they happened (a stable
            // sort keeps each partition's order among equal times).
            records.sort_by_key(|r| r.timestamp);
        }
        let mut ready = Vec::with_capacity(records.len());
        let mut incomplete = Vec::new();
        for record in records {
            step.stats.read += 1;
            if let Some(join) = &mut self.join {
                match join.add(record, now, &mut incomplete) {
                    Ok(Added::Waiting) => {}
                    Ok(Added::Complete(joined)) => {
                        step.stats.joined += 1;
                        ready.push(Ready {
                            record: joined.record,
                            members: joined.members,
                        });
                    }
                    Err(rejected) => {
                        let Rejected {
                            record,
                            kind,
                            reason,
                        } = *rejected;
                        self.dead_letter(&record, kind, &reason, &mut step);
                    }
                }
                continue;
            }
            if let Err(reason) = self.check_format(&record) {
                self.dead_letter(&record, "decode", &reason, &mut step);
                continue;
            }
            let members = vec![record.locator()];
            ready.push(Ready { record, members });
        }
        if let Some(join) = &mut self.join {
            incomplete.extend(join.expire(now));
        }
        for gone in incomplete {
            self.give_up(gone, &mut ready, &mut step);
        }
        // What an earlier step left untried goes first: it is older, and
        // the first record of a step always gets its full deadline.
        let mut batch = std::mem::take(&mut self.carried);
        batch.append(&mut ready);
        self.run_transform(batch, &mut step);
        step
    }

    fn check_format(&self, record: &KafkaRecord) -> Result<(), String> {
        match self.definition.value_format {
            EnrichFormat::Raw => Ok(()),
            EnrichFormat::Json => {
                let value = record.value.as_deref().ok_or("record has no value")?;
                crate::json::check_value(value).map(|_| ())
            }
        }
    }

    fn give_up(&mut self, gone: Incomplete, ready: &mut Vec<Ready>, step: &mut Step) {
        step.stats.incomplete += 1;
        let action = self
            .definition
            .join
            .as_ref()
            .map_or(OnTimeout::Drop, |j| j.on_timeout);
        let reason = gone.to_string();
        tracing::info!(
            pipeline = self.definition.name,
            ?action,
            reason,
            "join incomplete"
        );
        step.finished.extend(gone.superseded.iter().cloned());
        match action {
            OnTimeout::Drop => {
                step.stats.dropped += gone.arrived.len() as u64;
                step.finished
                    .extend(gone.arrived.iter().map(KafkaRecord::locator));
            }
            OnTimeout::DeadLetter => {
                for record in &gone.arrived {
                    self.dead_letter(record, "join-timeout", &reason, step);
                }
            }
            OnTimeout::EmitPartial => ready.push(Ready {
                record: gone.partial,
                members: gone.arrived.iter().map(KafkaRecord::locator).collect(),
            }),
        }
    }

    /// Runs `ready` through the transform within the step's time budget;
    /// what the budget leaves untried is carried to the next step.
    fn run_transform(&mut self, ready: Vec<Ready>, step: &mut Step) {
        if ready.is_empty() {
            return;
        }
        // Records and what each stands for apart, so the guest gets a slice
        // of the records themselves, not copies.
        let (records, mut members): (Vec<KafkaRecord>, Vec<Vec<RecordRef>>) =
            ready.into_iter().map(|r| (r.record, r.members)).unzip();
        let size = self.definition.batch_size.max(1);
        let mut budget = Budget::new(self.definition.limits.budget());
        // Records tried so far: the untried ones are the ones after them.
        let mut tried = 0;
        for inputs in records.chunks(size) {
            let called = Instant::now();
            let results = self.transformer.process_within(inputs, &mut budget);
            step.guest += called.elapsed();
            let done = results.len();
            // Exactly this chunk's: the records stay paired with their
            // members whatever `process_within` returns.
            let chunk = members.get_mut(tried..).unwrap_or_default();
            for ((input, result), members) in inputs.iter().zip(results).zip(chunk) {
                if let Err(error) = &result
                    && matches!(error.failure, GuestFailure::Deadline(_))
                {
                    step.overran.push(input.locator());
                }
                let member = step.finished.len();
                let routed = self.routing.route(
                    self.transformer.transform(),
                    input,
                    result,
                    &mut step.produce,
                );
                match routed {
                    Routed::Emitted(n) => {
                        step.stats.emitted += 1;
                        step.stats.produced += n as u64;
                    }
                    Routed::Dropped => step.stats.dropped += 1,
                    Routed::DeadLettered => step.stats.dead_lettered += 1,
                }
                step.produced_from(member);
                // Moved, not cloned.
                step.finished.append(members);
            }
            tried += done;
            if done < inputs.len() {
                break;
            }
        }
        self.carried = records
            .into_iter()
            .zip(members)
            .skip(tried)
            .map(|(record, members)| Ready { record, members })
            .collect();
        if !self.carried.is_empty() {
            tracing::warn!(
                pipeline = self.definition.name,
                carried = self.carried.len(),
                overran = step.overran.len(),
                budget_ms = self.definition.limits.budget().as_millis() as u64,
                "the batch's time budget is spent; the records left wait for the next step"
            );
        }
    }

    /// Waits for the acknowledgements of `step`'s records (`sent`): a
    /// record the broker refuses for good goes to the dead-letter topic
    /// instead, with the reason and its source; one refused for now is
    /// sent again with backoff (an error when it still fails). Returns how
    /// many outputs were dead-lettered so.
    pub fn settle(
        &self,
        producer: &Producer,
        sent: InFlight,
        step: &Step,
    ) -> Result<u64, KafkaError> {
        let refused = sent.refused();
        if refused.is_empty() {
            return Ok(0);
        }
        crate::pipeline::deliver::settle(
            producer,
            refused,
            &step.produce,
            &self.routing,
            self.transformer.transform(),
            &|index| step.source_of(index).cloned(),
            Backoff::NETWORK,
        )
    }

    /// Sends `record` to the dead-letter topic with `kind` and `reason`:
    /// for records refused before they reach the pipeline.
    pub fn dead_letter(&self, record: &KafkaRecord, kind: &str, reason: &str, step: &mut Step) {
        self.routing.dead_letter(
            self.transformer.transform(),
            record,
            kind,
            reason,
            &mut step.produce,
        );
        step.stats.dead_lettered += 1;
        step.produced_from(step.finished.len());
        step.finished.push(record.locator());
    }
}
