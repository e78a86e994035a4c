//! One topic's export run: plan the ranges from what the group committed
//! and what the storage already holds (the files, or the Delta table's
//! log; `resume.rs` decides), read, write one file per partition and block
//! of offsets (`writer.rs`), store, commit them to the table when the topic
//! is a Delta table, store the aggregate (`aggregate.rs`), commit the
//! group's offsets.

use std::collections::BTreeMap;
use std::time::Instant;

use super::aggregate::{AggregateReport, RunAggregate, load_frontier};
use super::complete::State;
use super::decode::typed_value_fields;
use super::delta::{DeltaReport, DeltaTable};
use super::error::ExportError;
use super::layout::{self, FileNames};
pub use super::options::{DEFAULT_MEMORY_BUDGET, DEFAULT_STAGING_BUDGET, ExportOptions};
use super::ranges::{self, Journal, StoredRanges};
use super::resume::{PartitionPlan, still_needed, with_unaggregated};
use super::stored::StoredPartition;
use super::time_layout::{self, TimeReport};
use super::writer::{RangeSink, Sink, TopicWriter};
use super::written::WrittenFile;
use crate::config::ExportFormat;
use crate::kafka::{BoundedReader, KafkaConfig, ReadPlan, Start};
use crate::record::KafkaRecord;
use crate::runtime::Aggregator;
use crate::storage::Storage;
use crate::table::{kafka_schema, schema_with};

/// What one topic's run did.
#[derive(Debug, Clone, Default)]
pub struct TopicReport {
    pub topic: String,
    /// Partitions with records to write.
    pub partitions: usize,
    /// Records written (to the files or their dead letters).
    pub records: u64,
    pub dead_lettered: u64,
    pub files: Vec<WrittenFile>,
    /// Files of earlier runs that this run's files replaced.
    pub superseded: usize,
    /// The aggregator's result, when one ran.
    pub aggregate: Option<AggregateReport>,
    /// Most bytes the run's open files held on the staging disk at once.
    pub staging_peak_bytes: u64,
    /// What the Delta table did, when the topic is one.
    pub delta: Option<DeltaReport>,
    /// Completeness and compaction, when the topic's files go by time.
    pub time: Option<TimeReport>,
    /// Units finished early by a roll (size, age or idleness).
    pub rolled: usize,
    pub seconds: f64,
}

impl TopicReport {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Storage keys of this run's dead-letter files.
    pub fn dead_letter_files(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter_map(|f| f.dead_letters.as_ref().map(|(_, key)| key.as_str()))
    }
}

pub fn export_topic(
    config: &KafkaConfig,
    plan: &ReadPlan,
    storage: &Storage,
    options: &ExportOptions,
    aggregator: Option<Aggregator>,
    mut progress: impl FnMut(u64),
) -> Result<TopicReport, ExportError> {
    let started = Instant::now();
    let topic = plan.topic.as_str();
    let staging = storage
        .staging_dir(&options.run_id)
        .join(layout::staging_folder(topic, options.format));
    let mut sink = match (options.format, &options.time) {
        (ExportFormat::Parquet, None) => Sink::Files(BTreeMap::new()),
        (ExportFormat::Parquet, Some(_)) => {
            // What a stopped run left half done is finished or undone
            // before anything is planned from the range records.
            ranges::recover(storage, topic)?;
            Sink::Ranges(Box::new(RangeSink {
                held: BTreeMap::new(),
                journal: Journal::new(topic, &options.run_id),
                appends: matches!(plan.start, Start::Committed),
                waiting: Vec::new(),
                recorded: Vec::new(),
            }))
        }
        (ExportFormat::Delta, time) => {
            let mut table = DeltaTable::open(
                storage,
                plan,
                &options.run_id,
                &staging,
                options.checkpoint_interval,
            )?;
            if let Some(layout) = time {
                table.partition_by(layout.by);
            }
            Sink::Delta(Box::new(table))
        }
    };
    // How complete the output was when the run started (records of a
    // bucket already complete are late).
    let state = match &options.time {
        Some(layout) => {
            let state = State::load(storage, topic, options.format)?;
            state.check(topic, layout.by)?;
            Some(state)
        }
        None => None,
    };
    // How far earlier runs' aggregates reach, for a run that has one.
    let aggregated = match &aggregator {
        Some(aggregator) => Some(load_frontier(
            storage,
            aggregator.transform().name(),
            topic,
            &plan.group_id,
        )?),
        None => None,
    };
    let mut partitions: Vec<PartitionPlan> = Vec::new();
    let mut reader = BoundedReader::open_with(config, plan, |ranges| {
        ranges
            .into_iter()
            .map(|range| {
                let needed = match &mut sink {
                    Sink::Files(stored) => {
                        let held = StoredPartition::load(storage, topic, range.partition)?;
                        let needed = still_needed(range, &held, plan);
                        stored.insert(range.partition, held);
                        needed
                    }
                    Sink::Ranges(sink) => {
                        let held = StoredRanges::load(storage, topic, range.partition)?;
                        let needed = still_needed(range, &held, plan);
                        sink.held.insert(range.partition, held);
                        needed
                    }
                    Sink::Delta(table) => {
                        still_needed(range, &table.partition(range.partition), plan)
                    }
                };
                let part = match (&aggregated, &plan.start) {
                    // From the group's offsets (where `range` starts), or
                    // the aggregates' frontier when a run aggregated
                    // further and stopped before committing.
                    (Some(frontier), Start::Committed) => {
                        let reached = frontier.get(&range.partition).copied();
                        with_unaggregated(needed, reached.unwrap_or(range.start).max(range.start))
                    }
                    _ => PartitionPlan {
                        read: needed,
                        write_from: needed.start,
                    },
                };
                partitions.push(part);
                Ok::<_, ExportError>(part.read)
            })
            .collect()
    })?;
    let wanted = match &options.registry {
        Some(registry) => {
            typed_value_fields(registry, topic).map_err(ExportError::SchemaRegistry)?
        }
        None => Vec::new(),
    };
    let base = kafka_schema(options.value, options.timestamps());
    let columns = match &mut sink {
        Sink::Files(_) | Sink::Ranges(_) => {
            let schema = schema_with(&base, &wanted);
            (wanted, schema)
        }
        Sink::Delta(table) => table.columns(&base, &wanted)?,
    };
    let run_id = options.run_id.clone();
    let names = match (options.format, options.time.as_ref().map(|t| t.by)) {
        (ExportFormat::Parquet, None) => FileNames::Ranges,
        (ExportFormat::Delta, None) => FileNames::Delta { run_id },
        (ExportFormat::Parquet, Some(by)) => FileNames::Buckets { run_id, by },
        (ExportFormat::Delta, Some(by)) => FileNames::DeltaBuckets { run_id, by },
    };
    let mut aggregate = match aggregator {
        Some(aggregator) => Some(RunAggregate::new(aggregator, &staging)?),
        None => None,
    };
    let mut writer = TopicWriter::new(
        topic,
        plan,
        storage,
        options,
        columns,
        staging,
        names,
        &mut sink,
        &partitions,
    );
    writer.complete_through = state.as_ref().and_then(|s| s.complete_through);
    let mut report = TopicReport {
        topic: topic.to_owned(),
        partitions: partitions
            .iter()
            .filter(|p| p.write_from.max(p.read.start) < p.read.end)
            .count(),
        ..TopicReport::default()
    };

    while let Some(batch) = reader.next_batch(options.batch_size.max(1))? {
        for (partition, records) in by_partition(batch) {
            let written = writer.write(partition, records)?;
            report.records += written.records;
            if let Some(aggregate) = &mut aggregate {
                // Exactly the records the files keep, decoded as they are.
                aggregate.add(&written.kept)?;
            }
        }
        writer.roll_due()?;
        writer.commit_ready()?;
        progress(report.records);
        crate::crash_point!("export::mid-batch");
    }
    crate::crash_point!("export::before-upload");
    writer.finish_all()?;
    report.staging_peak_bytes = writer.staged_peak;
    report.rolled = writer.rolled;
    let written = std::mem::take(&mut writer.written);
    let staging = writer.staging.clone();
    drop(writer);
    // Every record of every range is now in a stored file or its dead
    // letters.
    let done: Vec<(i32, i64)> = reader
        .ranges()
        .iter()
        .filter(|r| r.start < r.end)
        .map(|r| (r.partition, r.end))
        .collect();
    let (superseded, delta) = sink.settle(storage, &written, &done)?;
    report.superseded = superseded;
    report.delta = delta;
    report.files = written.into_values().flatten().collect();
    if let (Some(layout), Some(state), Start::Committed) = (&options.time, state, &plan.start) {
        // Completeness is judged by runs that follow the group, which read
        // every partition; a re-export of some offsets says nothing of it.
        let names = (topic, options.format, layout.by);
        let ranges = reader.ranges().to_vec();
        report.time = Some(match &mut sink {
            Sink::Ranges(sink) => {
                let reached = time_layout::reached_by_ranges(
                    storage,
                    topic,
                    &state,
                    &ranges,
                    &sink.recorded,
                )?;
                let journal = &mut sink.journal;
                let mut compact = |partition, from, through| {
                    time_layout::compact_ranges(
                        storage,
                        topic,
                        options,
                        layout.by,
                        &staging,
                        journal,
                        (partition, from, through),
                    )
                };
                time_layout::finish(
                    storage,
                    names,
                    options,
                    &staging,
                    state,
                    &ranges,
                    &reached,
                    &report.files,
                    &mut compact,
                )?
            }
            Sink::Delta(table) => {
                let reached = time_layout::reached_by_table(table, &ranges);
                let done = {
                    let table = &mut **table;
                    let mut compact = |partition, from, through| {
                        crate::export::compact_table::compact_partition(
                            storage,
                            table,
                            options,
                            layout.by,
                            &staging,
                            partition,
                            (from, through),
                        )
                    };
                    time_layout::finish(
                        storage,
                        names,
                        options,
                        &staging,
                        state,
                        &ranges,
                        &reached,
                        &report.files,
                        &mut compact,
                    )?
                };
                // The table says it too: a property readers of the table
                // see (the end of the last complete time partition), set
                // in a commit that names the partitions completed.
                let boundary = done
                    .completeness
                    .complete_through
                    .and_then(|through| layout.by.bucket(through))
                    .map(|open| open.start);
                if let (false, Some(through)) = (done.completeness.marked.is_empty(), boundary) {
                    let iso = chrono::DateTime::from_timestamp_millis(through)
                        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default();
                    table.commit_complete_through(storage, &iso, &done.completeness.marked)?;
                }
                report.delta = Some(table.report());
                done
            }
            Sink::Files(_) => TimeReport::default(),
        });
    }
    report.dead_lettered = report.files.iter().map(|f| f.dead_lettered).sum();
    if let (Some(aggregate), Some(before)) = (aggregate, aggregated) {
        report.aggregate = Some(aggregate.store(
            storage,
            &staging,
            (topic, &plan.group_id, &options.run_id),
            before,
            &done,
        )?);
    }

    // The group's offsets follow (a convenience for lag tools and the next
    // run's start: the storage decides where a run resumes).
    crate::crash_point!("export::before-commit");
    if !done.is_empty() {
        reader.commit(&done)?;
    }
    // Empty once every file is stored.
    let _ = std::fs::remove_dir(&staging);
    report.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        topic,
        run_id = options.run_id,
        records = report.records,
        files = report.files.len(),
        dead_lettered = report.dead_lettered,
        superseded = report.superseded,
        table_version = report.delta.as_ref().and_then(|d| d.version),
        "topic exported"
    );
    Ok(report)
}

/// The batch's records grouped by partition, each group in offset order.
fn by_partition(batch: Vec<KafkaRecord>) -> BTreeMap<i32, Vec<KafkaRecord>> {
    let mut groups: BTreeMap<i32, Vec<KafkaRecord>> = BTreeMap::new();
    for record in batch {
        groups.entry(record.partition).or_default().push(record);
    }
    groups
}
