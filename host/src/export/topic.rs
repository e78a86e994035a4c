//! One topic's export run: plan, read, write per-partition files, commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::dead_letters::DeadLetters;
use super::partition_file::{PartitionFile, WrittenFile};
use crate::kafka::{BoundedReader, KafkaConfig, KafkaError, ReadPlan};
use crate::parquet::{ValueColumn, kafka_batch, kafka_schema};
use crate::record::KafkaRecord;

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
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Folder the files go under.
    pub root: PathBuf,
    pub value: ValueColumn,
    /// Records read per step.
    pub batch_size: usize,
    /// A file holding this many rows is closed and a new one started.
    pub max_rows_per_file: u64,
    /// Names the dead-letter file of this run.
    pub run_id: String,
}

impl ExportOptions {
    pub fn new(root: impl Into<PathBuf>, run_id: impl Into<String>) -> Self {
        ExportOptions {
            root: root.into(),
            value: ValueColumn::Json,
            batch_size: 5_000,
            max_rows_per_file: 1_000_000,
            run_id: run_id.into(),
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
    pub dead_letter_file: Option<PathBuf>,
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
    options: &ExportOptions,
    mut progress: impl FnMut(u64),
) -> Result<TopicReport, ExportError> {
    let started = Instant::now();
    let topic = plan.topic.as_str();
    let mut reader = BoundedReader::open(config, plan)?;
    let schema = kafka_schema(options.value);
    let mut open: BTreeMap<i32, PartitionFile> = BTreeMap::new();
    let mut report = TopicReport {
        topic: topic.to_owned(),
        partitions: reader.ranges().iter().filter(|r| r.start < r.end).count(),
        ..TopicReport::default()
    };
    let mut dead_letters = DeadLetters::new(&options.root, topic, &options.run_id);

    while let Some(batch) = reader.next_batch(options.batch_size.max(1))? {
        report.records += batch.len() as u64;
        for (partition, records) in by_partition(&batch) {
            let (rows, rejected) =
                kafka_batch(&records, options.value, |p, o| plan.adjusted_offset(p, o)).map_err(
                    |e| ExportError::Parquet {
                        path: options.root.clone(),
                        reason: e.to_string(),
                    },
                )?;
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
                    &options.root,
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
                report.files.push(full.finish()?);
            }
        }
        progress(report.records);
    }
    for (_, file) in std::mem::take(&mut open) {
        report.files.push(file.finish()?);
    }
    report.dead_lettered = dead_letters.count;
    report.dead_letter_file = dead_letters.finish()?;

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

/// The batch's records grouped by partition, each group in offset order.
fn by_partition(batch: &[KafkaRecord]) -> BTreeMap<i32, Vec<KafkaRecord>> {
    let mut groups: BTreeMap<i32, Vec<KafkaRecord>> = BTreeMap::new();
    for record in batch {
        groups
            .entry(record.partition)
            .or_default()
            .push(record.clone());
    }
    groups
}

/// Where a file for `topic` and `partition` goes under `root`.
pub fn partition_dir(root: &Path, topic: &str, partition: i32) -> PathBuf {
    root.join(format!("topic={topic}"))
        .join(format!("partition={partition}"))
}
