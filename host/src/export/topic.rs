//! One topic's export run: plan the ranges from what the group committed
//! and what the storage already holds (the files, or the Delta table's
//! log), read, write one file per partition and block of offsets, store,
//! commit them to the table when the topic is a Delta table, commit the
//! group's offsets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::delta::{DeltaReport, DeltaTable};
use super::error::ExportError;
use super::layout::{self, FileNames};
use super::partition_file::{PartitionFile, WrittenFile};
use super::stored::{Held, StoredPartition};
use super::upload::{DEFAULT_UPLOAD_CONCURRENCY, ToStore, store_all};
use crate::codec::{NonFinite, SchemaRegistry, decode_confluent_avro, write_avro_json};
use crate::config::ExportFormat;
use crate::kafka::{BoundedReader, KafkaConfig, PartitionRange, ReadPlan, Start};
use crate::record::KafkaRecord;
use crate::runtime::Aggregator;
use crate::storage::Storage;
use crate::table::{
    Cell, Timestamps, ValueColumn, ValueField, admit, kafka_batch, kafka_schema, merged_fields,
    schema_with, typed_cells, with_value_columns,
};

/// Row groups of a topic's open files, at most, in memory (256 MiB).
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub value: ValueColumn,
    /// Records read per step.
    pub batch_size: usize,
    /// Files cover blocks of this many offsets (`0..N`, `N..2N`, ...), so a
    /// file holds at most this many rows, and where a file ends depends
    /// only on the offsets, never on how the records were polled.
    pub max_rows_per_file: u64,
    /// Names the staging folder and the aggregator's result of this run.
    pub run_id: String,
    /// Decode values as Confluent-framed Avro with this registry; they are
    /// written as JSON text, with typed columns from the topic's subject.
    pub registry: Option<Arc<SchemaRegistry>>,
    /// Most bytes the open row groups of all the topic's files may hold in
    /// memory: past it, the largest are written out, so memory stays
    /// bounded however many partitions a topic has.
    pub memory_budget: usize,
    /// Parquet files, or a Delta table.
    pub format: ExportFormat,
    /// A Delta table gets a checkpoint every this many versions, unless
    /// it sets `delta.checkpointInterval` itself.
    pub checkpoint_interval: u64,
    /// Finished files stored at once (the end of a run finishes every
    /// partition's file together).
    pub upload_concurrency: usize,
}

impl ExportOptions {
    pub fn new(run_id: impl Into<String>) -> Self {
        ExportOptions {
            value: ValueColumn::Json,
            batch_size: 5_000,
            max_rows_per_file: 1_000_000,
            run_id: run_id.into(),
            registry: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            format: ExportFormat::Parquet,
            checkpoint_interval: 10,
            upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
        }
    }

    /// The unit of the files' `timestamp` column.
    fn timestamps(&self) -> Timestamps {
        match self.format {
            ExportFormat::Parquet => Timestamps::Millis,
            ExportFormat::Delta => Timestamps::Micros,
        }
    }
}

/// What one topic's run did.
#[derive(Debug, Clone, Default)]
pub struct TopicReport {
    pub topic: String,
    /// Partitions with records to read.
    pub partitions: usize,
    pub records: u64,
    pub dead_lettered: u64,
    pub files: Vec<WrittenFile>,
    /// Files of earlier runs that this run's files replaced.
    pub superseded: usize,
    /// Storage key and row count of the aggregator's result, when one ran.
    pub aggregate: Option<(String, usize)>,
    /// What the Delta table did, when the topic is one.
    pub delta: Option<DeltaReport>,
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

/// Where a run's files go: files that are themselves the record of what
/// was exported, or a Delta table whose log is.
enum Sink {
    Files(BTreeMap<i32, StoredPartition>),
    Delta(Box<DeltaTable>),
}

pub fn export_topic(
    config: &KafkaConfig,
    plan: &ReadPlan,
    storage: &Storage,
    options: &ExportOptions,
    mut aggregator: Option<Aggregator>,
    mut progress: impl FnMut(u64),
) -> Result<TopicReport, ExportError> {
    let started = Instant::now();
    let topic = plan.topic.as_str();
    let staging = storage.staging_dir(&options.run_id);
    let mut sink = match options.format {
        ExportFormat::Parquet => Sink::Files(BTreeMap::new()),
        ExportFormat::Delta => Sink::Delta(Box::new(DeltaTable::open(
            storage,
            plan,
            &options.run_id,
            &staging,
            options.checkpoint_interval,
        )?)),
    };
    let mut reader = BoundedReader::open_with(config, plan, |ranges| {
        ranges
            .into_iter()
            .map(|range| match &mut sink {
                Sink::Files(stored) => {
                    let held = StoredPartition::load(storage, topic, range.partition)?;
                    let range = still_needed(range, &held, plan);
                    stored.insert(range.partition, held);
                    Ok::<_, ExportError>(range)
                }
                Sink::Delta(table) => {
                    Ok(still_needed(range, &table.partition(range.partition), plan))
                }
            })
            .collect()
    })?;
    let wanted = match &options.registry {
        Some(registry) => typed_value_fields(registry, topic),
        None => Vec::new(),
    };
    let base = kafka_schema(options.value, options.timestamps());
    let (typed, schema) = match &mut sink {
        Sink::Files(_) => {
            let schema = schema_with(&base, &wanted);
            (wanted, schema)
        }
        Sink::Delta(table) => table.columns(&base, &wanted)?,
    };
    let names = match options.format {
        ExportFormat::Parquet => FileNames::Ranges,
        ExportFormat::Delta => FileNames::Delta {
            run_id: options.run_id.clone(),
        },
    };
    let mut writer = TopicWriter {
        topic,
        plan,
        storage,
        options,
        schema,
        typed,
        staging,
        names,
        sink: &mut sink,
        open: BTreeMap::new(),
        written: BTreeMap::new(),
    };
    let mut report = TopicReport {
        topic: topic.to_owned(),
        partitions: reader.ranges().iter().filter(|r| r.start < r.end).count(),
        ..TopicReport::default()
    };

    while let Some(batch) = reader.next_batch(options.batch_size.max(1))? {
        report.records += batch.len() as u64;
        for (partition, records) in by_partition(batch) {
            let kept = writer.write(partition, records)?;
            if let Some(aggregator) = &mut aggregator {
                // Exactly the records the files keep, decoded as they are.
                aggregator.add(&kept)?;
            }
        }
        writer.commit_ready()?;
        progress(report.records);
        crate::crash_point!("export::mid-batch");
    }
    crate::crash_point!("export::before-upload");
    writer.finish_all()?;
    let TopicWriter {
        written, staging, ..
    } = writer;
    // Every record of every range is now in a stored file or its dead
    // letters.
    let done: Vec<(i32, i64)> = reader
        .ranges()
        .iter()
        .filter(|r| r.start < r.end)
        .map(|r| (r.partition, r.end))
        .collect();
    match &mut sink {
        Sink::Files(stored) => {
            for (partition, files) in &written {
                let (Some(first), Some(last)) = (files.first(), files.last()) else {
                    continue;
                };
                if let Some(held) = stored.get(partition) {
                    let keys: Vec<String> = files.iter().map(|f| f.key.clone()).collect();
                    report.superseded +=
                        held.remove_superseded(storage, first.first, last.last, &keys)?;
                }
            }
        }
        Sink::Delta(table) => {
            table.commit_all(storage, &done)?;
            let delta = table.report();
            report.superseded = delta.removed;
            report.delta = Some(delta);
        }
    }
    report.files = written.into_values().flatten().collect();
    report.dead_lettered = report.files.iter().map(|f| f.dead_lettered).sum();
    if let Some(aggregator) = aggregator {
        report.aggregate = Some(store_aggregate(
            storage,
            &staging,
            topic,
            &options.run_id,
            aggregator,
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

/// The part of `range` not yet in storage. From the group's offsets, a run
/// goes on after the last offset stored, which is past the committed one
/// when an earlier run stored its files and stopped before committing. A
/// run from explicit offsets or the earliest ones re-exports what it is
/// asked to; a stored file the range starts or ends inside is rewritten
/// whole (its records read again), so the new files replace old ones
/// entirely and no record is stored twice. A Delta table's `txn` decides
/// where the group resumes even when the group's offset is past it.
fn still_needed(range: PartitionRange, stored: &impl Held, plan: &ReadPlan) -> PartitionRange {
    let mut range = range;
    if let Start::Committed = plan.start {
        let Some(next) = stored
            .next_offset()
            .filter(|next| *next > range.start || stored.decides())
        else {
            return range;
        };
        if next > range.high {
            tracing::warn!(
                topic = plan.topic,
                partition = range.partition,
                stored_up_to = next - 1,
                high_watermark = range.high,
                "the storage holds offsets past the partition's end (was the topic re-created, or \
                 is this folder another cluster's?): nothing is read until the partition passes them"
            );
        }
        if next < range.low {
            tracing::warn!(
                topic = plan.topic,
                partition = range.partition,
                stored_up_to = next - 1,
                low_watermark = range.low,
                "the partition no longer has the records after what is stored (retention \
                 deleted them): the run starts at its earliest offset"
            );
        }
        range.start = next.max(range.low).min(range.high);
        range.end = plan.capped_end(range.start, range.high);
        return range;
    }
    if range.start >= range.end {
        return range;
    }
    if let Some(file) = stored.covering(range.start) {
        // Records below the low watermark are gone: such a file cannot be
        // rewritten, so the read goes on after it instead.
        range.start = if file.first >= range.low {
            file.first
        } else {
            file.last + 1
        };
    }
    if let Some(file) = stored.covering(range.end - 1) {
        range.end = if file.last < range.high {
            file.last + 1
        } else {
            file.first
        };
    }
    range.end = range.end.max(range.start);
    range
}

/// The open files of a topic's run and what they need to write.
struct TopicWriter<'a> {
    topic: &'a str,
    plan: &'a ReadPlan,
    storage: &'a Storage,
    options: &'a ExportOptions,
    schema: arrow_schema::SchemaRef,
    typed: Vec<ValueField>,
    staging: PathBuf,
    names: FileNames,
    sink: &'a mut Sink,
    open: BTreeMap<i32, PartitionFile>,
    /// Stored files, by partition, in offset order.
    written: BTreeMap<i32, Vec<WrittenFile>>,
}

impl TopicWriter<'_> {
    /// Writes one partition's records (in offset order); returns those kept
    /// in the files, values decoded.
    fn write(
        &mut self,
        partition: i32,
        records: Vec<KafkaRecord>,
    ) -> Result<Vec<KafkaRecord>, ExportError> {
        let block_size = i64::try_from(self.options.max_rows_per_file.max(1)).unwrap_or(i64::MAX);
        let mut kept_all = Vec::with_capacity(records.len());
        let mut rest = records.as_slice();
        while let Some(first) = rest.first() {
            let block = first.offset.div_euclid(block_size);
            let split = rest
                .iter()
                .position(|r| r.offset.div_euclid(block_size) != block)
                .unwrap_or(rest.len());
            let (chunk, after) = rest.split_at(split);
            rest = after;
            if self
                .open
                .get(&partition)
                .is_some_and(|f| f.block() != block)
            {
                self.finish(partition)?;
            }
            let file = match self.open.entry(partition) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(PartitionFile::create(
                    &self.staging,
                    self.topic,
                    partition,
                    block,
                    first.offset,
                    self.schema.clone(),
                )?),
            };
            let mut kept = Vec::with_capacity(chunk.len());
            let mut cells: Vec<Vec<Cell>> = Vec::new();
            for record in chunk {
                match decode(record, self.options, &self.typed) {
                    Ok((record, row)) => {
                        kept.push(record);
                        cells.extend(row);
                    }
                    Err(reason) => file.dead_letter(record, &reason)?,
                }
            }
            let staging = &self.staging;
            let parquet_error = |e: arrow_schema::ArrowError| ExportError::Parquet {
                path: staging.clone(),
                reason: e.to_string(),
            };
            let plan = self.plan;
            let rows = kafka_batch(
                &kept,
                self.options.value,
                self.options.timestamps(),
                |p, o| plan.adjusted_offset(p, o),
            )
            .map_err(parquet_error)?;
            let rows = if self.typed.is_empty() {
                rows
            } else {
                with_value_columns(&rows, &self.typed, &cells).map_err(parquet_error)?
            };
            let last = chunk.last().map_or(first.offset, |r| r.offset);
            file.write(&rows, last)?;
            kept_all.extend(kept);
            self.keep_within_budget()?;
        }
        Ok(kept_all)
    }

    /// Writes out the largest open row groups while together they hold
    /// more than the budget, down to half of it (so this does not run after
    /// every batch once the budget is reached).
    fn keep_within_budget(&mut self) -> Result<(), ExportError> {
        let budget = self.options.memory_budget.max(1);
        let mut total: usize = self.open.values().map(PartitionFile::buffered).sum();
        if total <= budget {
            return Ok(());
        }
        let mut by_size: Vec<(usize, i32)> = self
            .open
            .iter()
            .map(|(partition, file)| (file.buffered(), *partition))
            .collect();
        by_size.sort_unstable_by(|a, b| b.cmp(a));
        for (size, partition) in by_size {
            if total <= budget / 2 {
                break;
            }
            if let Some(file) = self.open.get_mut(&partition) {
                file.flush_row_group()?;
                total = total.saturating_sub(size);
            }
        }
        Ok(())
    }

    /// Closes and stores the partition's open file.
    fn finish(&mut self, partition: i32) -> Result<(), ExportError> {
        self.finish_and_store(&[partition])
    }

    /// Closes the partitions' open files, then stores them together (up to
    /// the run's upload concurrency at once).
    fn finish_and_store(&mut self, partitions: &[i32]) -> Result<(), ExportError> {
        let mut finished = Vec::with_capacity(partitions.len());
        for partition in partitions {
            if let Some(file) = self.open.remove(partition) {
                finished.push(file.finish(&self.names)?);
            }
        }
        if finished.is_empty() {
            return Ok(());
        }
        let to_store: Vec<ToStore<'_>> = finished
            .iter()
            .map(|file| ToStore {
                file,
                // A Delta table's log says which files hold a range; old
                // dead letters are not looked up there.
                had_dead_letters: match &*self.sink {
                    Sink::Files(stored) => stored
                        .get(&file.partition)
                        .is_some_and(|s| s.has_dead_letters(file.first, file.last)),
                    Sink::Delta(_) => false,
                },
            })
            .collect();
        store_all(
            self.storage,
            self.topic,
            &to_store,
            self.options.upload_concurrency,
        )?;
        for written in finished {
            if let Sink::Delta(table) = &mut *self.sink {
                table.stored(&written);
            }
            self.written
                .entry(written.partition)
                .or_default()
                .push(written);
        }
        Ok(())
    }

    /// Commits to the Delta table the files finished so far (a block of
    /// offsets filled mid-run), so that a run cut short keeps them.
    fn commit_ready(&mut self) -> Result<(), ExportError> {
        if let Sink::Delta(table) = &mut *self.sink {
            table.commit_ready(self.storage)?;
        }
        Ok(())
    }

    fn finish_all(&mut self) -> Result<(), ExportError> {
        let partitions: Vec<i32> = self.open.keys().copied().collect();
        self.finish_and_store(&partitions)
    }
}

/// A record as the file keeps it (an Avro value replaced by its JSON) and
/// its typed cells, or why it cannot be kept.
pub fn decode(
    record: &KafkaRecord,
    options: &ExportOptions,
    typed: &[ValueField],
) -> Result<(KafkaRecord, Option<Vec<Cell>>), String> {
    options.timestamps().admit(record)?;
    let (Some(registry), Some(value)) = (&options.registry, &record.value) else {
        admit(record, options.value)?;
        let cells = (!typed.is_empty()).then(|| vec![Cell::Null; typed.len()]);
        return Ok((record.clone(), cells));
    };
    let (id, avro) = decode_confluent_avro(value, registry).map_err(|e| e.to_string())?;
    let cells = if typed.is_empty() {
        None
    } else {
        Some(typed_cells(&avro, typed)?)
    };
    let mut json = Vec::with_capacity(value.len() * 2);
    write_avro_json(id, &avro, NonFinite::Refuse, &mut json).map_err(|e| e.to_string())?;
    // Everything but the value, which is replaced (cloning it first would
    // copy the Avro bytes for nothing).
    let decoded = KafkaRecord {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        key: record.key.clone(),
        value: Some(json),
        headers: record.headers.clone(),
    };
    Ok((decoded, cells))
}

/// Typed columns for the fields of every version of `<topic>-value` (the
/// registry's default subject naming); none when the subject is unknown,
/// and the values stay JSON text only.
fn typed_value_fields(registry: &SchemaRegistry, topic: &str) -> Vec<ValueField> {
    let subject = format!("{topic}-value");
    match registry.subject_schemas(&subject) {
        Ok(Some(schemas)) => {
            let fields = merged_fields(&schemas);
            tracing::info!(
                topic,
                subject,
                versions = schemas.len(),
                columns = fields.len(),
                "typed value columns from the schema registry"
            );
            fields
        }
        Ok(None) => {
            tracing::warn!(
                topic,
                subject,
                "subject not in the schema registry: values are written as JSON text only"
            );
            Vec::new()
        }
        Err(error) => {
            tracing::warn!(topic, subject, %error, "cannot read the subject's schemas: values are written as JSON text only");
            Vec::new()
        }
    }
}

/// The batch's records grouped by partition, each group in offset order.
fn by_partition(batch: Vec<KafkaRecord>) -> BTreeMap<i32, Vec<KafkaRecord>> {
    let mut groups: BTreeMap<i32, Vec<KafkaRecord>> = BTreeMap::new();
    for record in batch {
        groups.entry(record.partition).or_default().push(record);
    }
    groups
}

/// The aggregator's rows as Parquet at
/// `_aggregates/<aggregator>/topic=T/<run id>.parquet`.
fn store_aggregate(
    storage: &Storage,
    staging: &Path,
    topic: &str,
    run_id: &str,
    aggregator: Aggregator,
) -> Result<(String, usize), ExportError> {
    let name = aggregator.transform().name().to_owned();
    let rows = aggregator
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
    let key = layout::aggregate_key(&name, topic, run_id);
    storage.upload(&local, &key)?;
    Ok((key, count))
}
