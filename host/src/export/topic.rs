//! One topic's export run: plan, read, write per-partition files, commit.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::dead_letters::DeadLetters;
use super::partition_file::{PartitionFile, WrittenFile};
use crate::codec::{SchemaRegistry, decode_confluent};
use crate::kafka::{BoundedReader, KafkaConfig, KafkaError, ReadPlan};
use crate::parquet::Rejected;
use crate::parquet::{
    ValueColumn, ValueField, kafka_batch, kafka_schema, merged_fields, schema_with,
    with_value_columns,
};
use crate::record::KafkaRecord;
use crate::runtime::{Aggregator, GuestError};
use crate::storage::{Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("writing {}: {reason}", path.display())]
    Parquet { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Aggregator(#[from] GuestError),
    #[error("aggregator `{aggregator}` result {index} is not JSON: {reason}")]
    AggregateNotJson {
        aggregator: String,
        index: usize,
        reason: String,
    },
    #[error(transparent)]
    AggregateTable(#[from] crate::parquet::ParquetError),
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub value: ValueColumn,
    /// Records read per step.
    pub batch_size: usize,
    /// A file holding this many rows is closed and a new one started.
    pub max_rows_per_file: u64,
    /// Names the dead-letter file of this run.
    pub run_id: String,
    /// Decode values as Confluent-framed Avro with this registry; they are
    /// written as JSON text.
    pub registry: Option<Arc<SchemaRegistry>>,
}

impl ExportOptions {
    pub fn new(run_id: impl Into<String>) -> Self {
        ExportOptions {
            value: ValueColumn::Json,
            batch_size: 5_000,
            max_rows_per_file: 1_000_000,
            run_id: run_id.into(),
            registry: None,
        }
    }
}

/// What one topic's run did.
#[derive(Debug, Clone, Default)]
pub struct TopicReport {
    pub topic: String,
    pub partitions: usize,
    pub records: u64,
    pub dead_lettered: u64,
    pub files: Vec<WrittenFile>,
    /// Storage key of the dead-letter file, when there is one.
    pub dead_letter_file: Option<String>,
    /// Storage key and row count of the aggregator's result, when one ran.
    pub aggregate: Option<(String, usize)>,
    pub seconds: f64,
}

impl TopicReport {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
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
    let mut reader = BoundedReader::open(config, plan)?;
    let typed = match &options.registry {
        Some(registry) => typed_value_fields(registry, topic),
        None => Vec::new(),
    };
    let schema = schema_with(&kafka_schema(options.value), &typed);
    let mut open: BTreeMap<i32, PartitionFile> = BTreeMap::new();
    let mut report = TopicReport {
        topic: topic.to_owned(),
        partitions: reader.ranges().iter().filter(|r| r.start < r.end).count(),
        ..TopicReport::default()
    };
    let staging = storage.staging_dir(&options.run_id);
    let mut dead_letters = DeadLetters::new(&staging, topic, &options.run_id);

    while let Some(batch) = reader.next_batch(options.batch_size.max(1))? {
        report.records += batch.len() as u64;
        if let Some(aggregator) = &mut aggregator {
            aggregator.add(&batch)?;
        }
        for (partition, records) in by_partition(batch) {
            let records = match &options.registry {
                Some(registry) => decode_avro(records, registry, &mut dead_letters)?,
                None => records,
            };
            let parquet_error = |e: arrow_schema::ArrowError| ExportError::Parquet {
                path: staging.clone(),
                reason: e.to_string(),
            };
            let (rows, rejected) =
                kafka_batch(&records, options.value, |p, o| plan.adjusted_offset(p, o))
                    .map_err(parquet_error)?;
            let rows = if typed.is_empty() {
                rows
            } else {
                with_value_columns(&rows, &typed).map_err(parquet_error)?
            };
            for r in &rejected {
                if let Some(record) = records.iter().find(|x| x.offset == r.offset) {
                    dead_letters.write(r, record)?;
                }
            }
            let (Some(first), Some(last)) = (records.first(), records.last()) else {
                continue;
            };
            let file = match open.entry(partition) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(PartitionFile::create(
                    &staging,
                    topic,
                    partition,
                    first.offset,
                    schema.clone(),
                )?),
            };
            file.write(&rows, last.offset)?;
            if file.rows() >= options.max_rows_per_file
                && let Some(full) = open.remove(&partition)
            {
                report.files.push(store(storage, full)?);
            }
        }
        progress(report.records);
    }
    for (_, file) in std::mem::take(&mut open) {
        report.files.push(store(storage, file)?);
    }
    report.dead_lettered = dead_letters.count;
    report.dead_letter_file = dead_letters.finish(storage)?;
    if let Some(aggregator) = aggregator {
        report.aggregate = Some(store_aggregate(
            storage,
            &staging,
            topic,
            &options.run_id,
            aggregator,
        )?);
    }

    // Every record of every range is now in a file or a dead-letter file.
    let done: Vec<(i32, i64)> = reader
        .ranges()
        .iter()
        .filter(|r| r.start < r.end)
        .map(|r| (r.partition, r.end))
        .collect();
    if !done.is_empty() {
        reader.commit(&done)?;
    }
    // Empty once every file is stored; left alone (with the reason logged)
    // otherwise.
    let _ = std::fs::remove_dir(&staging);
    report.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        topic,
        run_id = options.run_id,
        records = report.records,
        files = report.files.len(),
        dead_lettered = report.dead_lettered,
        "topic exported"
    );
    Ok(report)
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

/// Avro values replaced by their JSON; undecodable records dead-lettered.
fn decode_avro(
    records: Vec<KafkaRecord>,
    registry: &SchemaRegistry,
    dead_letters: &mut DeadLetters,
) -> Result<Vec<KafkaRecord>, ExportError> {
    let mut decoded = Vec::with_capacity(records.len());
    for mut record in records {
        let Some(value) = &record.value else {
            decoded.push(record);
            continue;
        };
        match decode_confluent(value, registry) {
            Ok(json) => {
                record.value = Some(json.to_string().into_bytes());
                decoded.push(record);
            }
            Err(error) => {
                let rejected = Rejected {
                    partition: record.partition,
                    offset: record.offset,
                    reason: error.to_string(),
                };
                dead_letters.write(&rejected, &record)?;
            }
        }
    }
    Ok(decoded)
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
    staging: &std::path::Path,
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
    let count = crate::parquet::write_json_records(&local, &rows)?;
    let key = format!("_aggregates/{name}/topic={topic}/{run_id}.parquet");
    storage.upload(&local, &key)?;
    Ok((key, count))
}

/// Closes a file and moves it to its key in storage.
fn store(storage: &Storage, file: PartitionFile) -> Result<WrittenFile, ExportError> {
    let written = file.finish()?;
    storage.upload(&written.staging, &written.key)?;
    Ok(written)
}
