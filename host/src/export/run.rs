//! An export of every topic of a topics.json file: the one entry point the
//! `sluice export` command and the timer trigger share. Topics run
//! concurrently, each in its own thread; one failing does not stop the
//! others, and the result says which failed and why.

use std::sync::Arc;

use super::error::ExportError;
use super::topic::{ExportOptions, TopicReport, export_topic};
use crate::codec::{CodecError, SchemaRegistry};
use crate::config::{Connections, EntryConflict, TopicEntry, ValueFormat, check_entries};
use crate::runtime::Limits;
use crate::storage::{Storage, StorageError};
use crate::table::ValueColumn;
use crate::transforms::{SourceError, TransformSource};

/// A run that could not start: nothing was read or written.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("opening the export's storage: {0}")]
    Storage(#[from] StorageError),
    #[error("the topics.json entries: {0}")]
    Entries(#[from] EntryConflict),
    #[error("signing in to Kafka: {0}")]
    KafkaCredential(#[from] crate::identity::IdentityError),
}

/// Why one topic failed.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("value_format avro needs schema_registry_url in the connections.json file")]
    NoSchemaRegistry,
    #[error(transparent)]
    SchemaRegistry(#[from] CodecError),
    #[error("aggregator `{name}`: {source}")]
    Aggregator { name: String, source: SourceError },
    #[error("aggregator `{name}` is not an aggregator: {source}")]
    NotAnAggregator {
        name: String,
        source: crate::runtime::RuntimeError,
    },
}

/// How a run goes, beyond what the files say.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Where to write, instead of the connections' storage URL.
    pub out: Option<String>,
    /// Files cover blocks of this many offsets (see [`ExportOptions`]).
    pub max_rows_per_file: u64,
    /// Bytes the open row groups of one topic may hold in memory.
    pub memory_budget: usize,
    /// A Delta table's versions between checkpoints, unless the table
    /// sets `delta.checkpointInterval`.
    pub checkpoint_interval: u64,
    /// Finished files a topic stores at once.
    pub upload_concurrency: usize,
    /// Bytes a topic's open files may hold on the staging disk of a
    /// remote export (see [`ExportOptions`]).
    pub staging_budget: u64,
    /// Files roll at this size, age or idleness (see [`ExportOptions`]).
    pub target_file_bytes: u64,
    pub max_file_age: std::time::Duration,
    pub max_file_idle: std::time::Duration,
    /// Merge the small files of complete time buckets at the end of a run.
    pub compact: bool,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            out: None,
            max_rows_per_file: ExportOptions::new("").max_rows_per_file,
            memory_budget: super::topic::DEFAULT_MEMORY_BUDGET,
            checkpoint_interval: ExportOptions::new("").checkpoint_interval,
            upload_concurrency: ExportOptions::new("").upload_concurrency,
            staging_budget: super::topic::DEFAULT_STAGING_BUDGET,
            target_file_bytes: super::options::DEFAULT_TARGET_FILE_BYTES,
            max_file_age: super::options::DEFAULT_MAX_FILE_AGE,
            max_file_idle: super::options::DEFAULT_MAX_FILE_IDLE,
            compact: true,
        }
    }
}

/// One export run over every entry of a topics.json file.
pub struct ExportRun {
    pub run_id: String,
    /// Where the files went.
    pub root: String,
    /// Per topic, in the order of the topics.json file.
    pub results: Vec<(String, Result<TopicReport, TopicError>)>,
}

impl ExportRun {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|(_, r)| r.is_err()).count()
    }
}

/// Exports every topic of `topics` concurrently. Aggregators named by the
/// entries come from `transforms`. `progress` hears each topic's count of
/// records read as it grows.
pub fn export_topics(
    topics: &[TopicEntry],
    connections: &Connections,
    settings: &RunSettings,
    transforms: &TransformSource,
    progress: &(dyn Fn(&str, u64) + Sync),
) -> Result<ExportRun, RunError> {
    // read_topics checked already; entries built another way are too.
    check_entries(topics)?;
    let url = settings
        .out
        .clone()
        .unwrap_or_else(|| connections.storage_url());
    let storage = Storage::open(&url, &connections.azure_credentials())?;
    let kafka = connections.kafka_config()?;
    let run_id = new_run_id();
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = topics
            .iter()
            .map(|entry| {
                let (kafka, storage, run_id) = (&kafka, &storage, &run_id);
                scope.spawn(move || {
                    let span = tracing::info_span!("export", topic = entry.topic, run_id);
                    let _entered = span.enter();
                    let began = std::time::SystemTime::now();
                    let options = topic_options(entry, connections, settings, run_id);
                    let result = options.and_then(|options| {
                        let aggregator = match &entry.aggregator {
                            Some(name) => Some(aggregator(transforms, name)?),
                            None => None,
                        };
                        Ok(export_topic(
                            kafka,
                            &entry.read_plan(),
                            storage,
                            &options,
                            aggregator,
                            |n| progress(&entry.topic, n),
                        )?)
                    });
                    export_span(&entry.topic, run_id, began, &result);
                    match &result {
                        Ok(r) => {
                            crate::metrics::export_run(
                                &entry.topic,
                                Some((r.records, r.files.len(), r.bytes(), r.seconds)),
                            );
                            if let Some(time) = &r.time {
                                let merged = &time.compaction;
                                crate::metrics::export_compaction(
                                    &entry.topic,
                                    merged.files_in,
                                    merged.files_out,
                                    merged.bytes_out,
                                );
                                crate::metrics::export_completeness(
                                    &entry.topic,
                                    time.completeness.marked.len(),
                                    time.completeness.complete_through,
                                );
                            }
                        }
                        Err(error) => {
                            crate::metrics::export_run(&entry.topic, None);
                            tracing::error!(%error, "topic export failed");
                        }
                    }
                    result
                })
            })
            .collect();
        topics
            .iter()
            .zip(handles)
            .map(|(entry, handle)| {
                // A panic is a bug, but it stays this topic's failure.
                let result = handle.join().unwrap_or_else(|_| {
                    Err(TopicError::Export(ExportError::Parquet {
                        path: storage.staging_dir(&run_id),
                        reason: "the export of this topic panicked (a bug: please report it)"
                            .into(),
                    }))
                });
                (entry.topic.clone(), result)
            })
            .collect()
    });
    Ok(ExportRun {
        run_id,
        root: storage.url().to_owned(),
        results,
    })
}

/// The span of one topic's run, for a tracing backend when one is
/// configured.
fn export_span(
    topic: &str,
    run_id: &str,
    began: std::time::SystemTime,
    result: &Result<TopicReport, TopicError>,
) {
    use opentelemetry::KeyValue;
    if !crate::telemetry::enabled() {
        return;
    }
    let failure = result.as_ref().err().map(ToString::to_string);
    let mut attributes = vec![
        KeyValue::new("messaging.destination.name", topic.to_owned()),
        KeyValue::new("sluice.run_id", run_id.to_owned()),
    ];
    if let Ok(report) = result {
        attributes.push(KeyValue::new("sluice.records", report.records as i64));
        attributes.push(KeyValue::new("sluice.files", report.files.len() as i64));
        attributes.push(KeyValue::new("sluice.bytes", report.bytes() as i64));
    }
    crate::telemetry::record(crate::telemetry::Span {
        name: format!("export {topic}"),
        context: crate::pipeline::TraceContext::derive(None, &format!("{run_id}\n{topic}")),
        parent: None,
        kind: opentelemetry::trace::SpanKind::Consumer,
        start: began,
        end: std::time::SystemTime::now(),
        attributes,
        error: failure.as_deref(),
    });
}

fn topic_options(
    entry: &TopicEntry,
    connections: &Connections,
    settings: &RunSettings,
    run_id: &str,
) -> Result<ExportOptions, TopicError> {
    let mut options = ExportOptions::new(run_id);
    options.max_rows_per_file = settings.max_rows_per_file;
    options.memory_budget = settings.memory_budget;
    options.format = entry.format;
    options.checkpoint_interval = settings.checkpoint_interval;
    options.upload_concurrency = settings.upload_concurrency.max(1);
    options.staging_budget = settings.staging_budget.max(1);
    options.target_file_bytes = settings.target_file_bytes.max(1);
    options.max_file_age = settings.max_file_age;
    options.max_file_idle = settings.max_file_idle;
    options.compact = settings.compact;
    options.time = entry.partition_by.map(|by| super::options::TimeLayout {
        by,
        field: entry.time_field.clone(),
        late: entry.late_data.unwrap_or_default(),
    });
    match entry.value_format.unwrap_or(ValueFormat::Json) {
        ValueFormat::Json => options.value = ValueColumn::Json,
        ValueFormat::Raw => options.value = ValueColumn::Raw,
        ValueFormat::Avro => {
            let url = connections
                .schema_registry_url
                .as_deref()
                .ok_or(TopicError::NoSchemaRegistry)?;
            let registry = SchemaRegistry::new(url)?.with_auth(connections.schema_registry_auth());
            options.registry = Some(Arc::new(registry));
        }
    }
    Ok(options)
}

fn aggregator(
    transforms: &TransformSource,
    name: &str,
) -> Result<crate::runtime::Aggregator, TopicError> {
    let transform = transforms
        .load_named(name, None)
        .map_err(|source| TopicError::Aggregator {
            name: name.to_owned(),
            source,
        })?;
    transform
        .aggregator(Limits::default(), Arc::default())
        .map_err(|source| TopicError::NotAnAggregator {
            name: name.to_owned(),
            source,
        })
}

/// `run-<Unix ms>-<6 hex digits>`: unique across runs started in the same
/// millisecond too (two timer invocations, a timer and a manual run), since
/// the run id names the staging folder and the aggregator's result. The
/// time first, so run ids sort in the order the runs started.
pub fn new_run_id() -> String {
    let salt = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "run-{}-{}",
        crate::clock::now_ms(),
        salt.get(..6).unwrap_or(&salt)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_ids_started_at_once_differ() {
        let ids: std::collections::BTreeSet<String> =
            (0..100).map(|_| super::new_run_id()).collect();
        assert_eq!(ids.len(), 100);
        assert!(ids.iter().all(|id| id.starts_with("run-")));
    }
}
