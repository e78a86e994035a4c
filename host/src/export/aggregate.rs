//! The aggregator of a topic's run: fed exactly the records the files keep,
//! its result stored beside the data as
//! `_aggregates/<aggregator>/topic=T/<run id>.parquet`.
//!
//! Exactly once, like the files. Each result comes with a frontier (per
//! partition, the offset after the last record any result up to this one
//! holds), stored before the result and counted only once the result is
//! in place. A run from the group's offsets reads back to that frontier, so
//! records that a failed run stored but never aggregated reach this run's
//! result, and records a run aggregated before it failed to commit do not
//! reach a second one.
//!
//! A record the aggregator fails on (a trap, its deadline, its memory cap)
//! is left out of the window and kept in the run's aggregate dead letters
//! with the reason; the window, the files and the run go on.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::dead_letters::DeadLetters;
use super::error::ExportError;
use super::layout;
use crate::record::KafkaRecord;
use crate::runtime::Aggregator;
use crate::storage::Storage;

/// What a run's aggregate came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregateReport {
    /// Storage key of the result.
    pub key: String,
    pub rows: usize,
    /// Records the aggregator failed on, kept in the aggregate's dead
    /// letters instead.
    pub refused: u64,
}

/// The frontier file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Frontier {
    /// The consumer group of the entry the aggregate is of.
    group: String,
    /// Per partition, the offset after the last record aggregated.
    next_offsets: BTreeMap<i32, i64>,
}

/// Per partition, the offset after the last record the stored aggregates
/// of `aggregator` over `topic` for `group` hold; empty when there are
/// none. A frontier or dead-letter file without its result belongs to a
/// run that stopped before storing it: removed, since its records are
/// aggregated again.
pub fn load_frontier(
    storage: &Storage,
    aggregator: &str,
    topic: &str,
    group: &str,
) -> Result<BTreeMap<i32, i64>, ExportError> {
    let keys = storage.list(&layout::aggregate_dir(aggregator, topic))?;
    let run_of = |key: &str, extension: &str| -> Option<String> {
        let name = key.rsplit('/').next()?;
        Some(name.strip_suffix(extension)?.strip_suffix('.')?.to_owned())
    };
    let results: Vec<String> = keys
        .iter()
        .filter_map(|k| run_of(k, layout::AGGREGATE))
        .collect();
    for key in &keys {
        let orphan = [layout::AGGREGATE_FRONTIER, layout::AGGREGATE_DEAD_LETTERS]
            .iter()
            .filter_map(|extension| run_of(key, extension))
            .any(|run| !results.contains(&run));
        if orphan {
            tracing::info!(
                file = key,
                "removing what a run stored before its aggregate, which it never stored"
            );
            storage.delete(key)?;
        }
    }
    // Run ids start with the run's time in milliseconds: the newest last.
    let mut frontiers: Vec<&String> = keys
        .iter()
        .filter(|k| run_of(k, layout::AGGREGATE_FRONTIER).is_some_and(|run| results.contains(&run)))
        .collect();
    frontiers.sort();
    for key in frontiers.into_iter().rev() {
        let bytes = storage.get(key)?;
        let frontier: Frontier =
            serde_json::from_slice(&bytes).map_err(|e| ExportError::Corrupt {
                key: key.clone(),
                reason: e.to_string(),
            })?;
        if frontier.group == group {
            return Ok(frontier.next_offsets);
        }
    }
    Ok(BTreeMap::new())
}

/// A run's aggregator and what it refused.
pub struct RunAggregate {
    aggregator: Aggregator,
    dead_letters: DeadLetters,
}

impl RunAggregate {
    /// Dead letters wait in `staging` until the result is stored.
    pub fn new(aggregator: Aggregator, staging: &Path) -> Result<Self, ExportError> {
        std::fs::create_dir_all(staging).map_err(|source| ExportError::Io {
            path: staging.to_owned(),
            source,
        })?;
        let name = aggregator.transform().name().to_owned();
        Ok(RunAggregate {
            aggregator,
            dead_letters: DeadLetters::new(staging.join(format!("{name}.dead_letters.jsonl"))),
        })
    }

    /// Adds the records the files keep; a record the aggregator fails on
    /// goes to the aggregate's dead letters.
    pub fn add(&mut self, kept: &[KafkaRecord]) -> Result<(), ExportError> {
        for error in self.aggregator.add(kept)? {
            let record = error.record.as_ref().and_then(|at| {
                kept.iter()
                    .find(|r| r.partition == at.partition && r.offset == at.offset)
            });
            match record {
                Some(record) => self.dead_letters.write(record, &error.to_string())?,
                // An error the aggregator could not pin to a record: the
                // window is not what the records say; the run fails.
                None => return Err(ExportError::Aggregator(error)),
            }
        }
        Ok(())
    }

    /// Finishes the window and stores its result: the frontier (`done`,
    /// `(partition, end)` of each range read, on top of `before`), the
    /// dead letters, then the result, whose presence makes the other two
    /// count.
    pub fn store(
        self,
        storage: &Storage,
        staging: &Path,
        (topic, group, run_id): (&str, &str, &str),
        before: BTreeMap<i32, i64>,
        done: &[(i32, i64)],
    ) -> Result<AggregateReport, ExportError> {
        let name = self.aggregator.transform().name().to_owned();
        let rows = self
            .aggregator
            .finish()?
            .iter()
            .enumerate()
            .map(|(index, record)| {
                serde_json::from_slice(record.value.as_deref().unwrap_or_default()).map_err(|e| {
                    ExportError::AggregateNotJson {
                        aggregator: name.clone(),
                        index,
                        reason: e.to_string(),
                    }
                })
            })
            .collect::<Result<Vec<serde_json::Value>, _>>()?;
        let local = staging.join(format!("{topic}.{name}.parquet"));
        let count = crate::table::write_json_records(&local, &rows)?;

        let mut next_offsets = before;
        for (partition, end) in done {
            let next = next_offsets.entry(*partition).or_insert(*end);
            *next = (*next).max(*end);
        }
        let frontier = Frontier {
            group: group.to_owned(),
            next_offsets,
        };
        let frontier_local = staging.join(format!("{topic}.{name}.frontier.json"));
        let text = serde_json::to_vec(&frontier).map_err(|e| ExportError::Corrupt {
            key: frontier_local.display().to_string(),
            reason: e.to_string(),
        })?;
        std::fs::write(&frontier_local, text).map_err(|source| ExportError::Io {
            path: frontier_local.clone(),
            source,
        })?;
        storage.upload(
            &frontier_local,
            &layout::aggregate_frontier_key(&name, topic, run_id),
        )?;
        let refused = self.dead_letters.count();
        if let Some(path) = self.dead_letters.finish()? {
            storage.upload(
                &path,
                &layout::aggregate_dead_letters_key(&name, topic, run_id),
            )?;
        }
        crate::crash_point!("export::before-aggregate");
        let key = layout::aggregate_key(&name, topic, run_id);
        storage.upload(&local, &key)?;
        Ok(AggregateReport {
            key,
            rows: count,
            refused,
        })
    }
}
