//! A topic's Delta table as one export run writes it: read before the run
//! plans its ranges (each partition resumes after its group's `txn`), the
//! columns its files get, the data files the run stored, and the commits
//! that make them part of the table, each with one `txn` per Kafka
//! partition it covers (`appId` `<group>-<partition>`, `version` the last
//! offset the table then holds). A file finished in the middle of a run
//! (a block of offsets filled) is committed at once, so a run cut short by
//! the function's time limit keeps what it committed; the rest is committed
//! at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_schema::SchemaRef;
use serde_json::json;

use super::actions::{Action, Add, FileRange, Format, Metadata, Protocol, Remove, StringMap, Txn};
use super::checkpoint;
use super::commit::commit;
use super::error::DeltaError;
use super::log::{Snapshot, TablePartition};
use super::schema::{self, Columns};
use crate::config::PartitionBy;
use crate::export::buckets::Location;
use crate::export::layout;
use crate::export::written::WrittenFile;
use crate::kafka::{ReadPlan, Start};
use crate::storage::Storage;
use crate::table::ValueField;

/// What the table did in one run.
#[derive(Debug, Clone, Default)]
pub struct DeltaReport {
    /// The table's version after the run (`None`: it has none yet).
    pub version: Option<u64>,
    pub commits: usize,
    /// Reading the log at the start.
    pub load_seconds: f64,
    /// The commits themselves (their puts and any log read they needed),
    /// not counting checkpoints.
    pub commit_seconds: f64,
    pub checkpoints: usize,
    pub checkpoint_seconds: f64,
    /// Files of earlier runs that this run's files replaced.
    pub removed: usize,
}

/// A file stored and not yet committed.
struct Pending {
    add: Add,
    range: FileRange,
    rows: u64,
}

pub struct DeltaTable {
    topic: String,
    group: String,
    run_id: String,
    staging: PathBuf,
    checkpoint_interval: u64,
    snapshot: Snapshot,
    columns: Option<Columns>,
    pending: Vec<Pending>,
    /// Offsets covered by this run's files, per partition, committed or not.
    span: BTreeMap<i32, (i64, i64)>,
    /// Paths of this run's files.
    added: BTreeSet<String>,
    report: DeltaReport,
    /// Partitioned by time (`dt`, and `hour`), when the topic is.
    by: Option<PartitionBy>,
}

/// The partition columns of a table partitioned by `by`.
pub fn partition_columns(by: Option<PartitionBy>) -> Vec<String> {
    match by {
        None => Vec::new(),
        Some(PartitionBy::Day) => vec!["dt".to_owned()],
        Some(PartitionBy::Hour) => vec!["dt".to_owned(), "hour".to_owned()],
    }
}

/// A file's partition values: its folder's `name=value` pairs, the hour
/// as a number (`dt=2026-12-05/hour=04` gives `hour` `4`).
pub fn partition_values(by: PartitionBy, location: Location) -> StringMap {
    by.path(location.bucket)
        .split('/')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let value = match name {
                "hour" => value.trim_start_matches('0').to_owned(),
                _ => value.to_owned(),
            };
            let value = if value.is_empty() {
                "0".to_owned()
            } else {
                value
            };
            Some((name.to_owned(), Some(value)))
        })
        .collect()
}

use crate::clock::now_ms as now_millis;

impl DeltaTable {
    /// Reads the table of `plan`'s topic (none yet is fine: the first
    /// commit creates it). `checkpoint_interval` applies unless the table
    /// sets `delta.checkpointInterval`.
    pub fn open(
        storage: &Storage,
        plan: &ReadPlan,
        run_id: &str,
        staging: &Path,
        checkpoint_interval: u64,
    ) -> Result<Self, DeltaError> {
        let started = Instant::now();
        let topic = plan.topic.as_str();
        let snapshot = Snapshot::load(storage, topic, staging)?;
        if let Some(protocol) = snapshot.protocol().filter(|p| !p.supported()) {
            let features: Vec<String> = protocol
                .reader_features
                .iter()
                .chain(&protocol.writer_features)
                .flatten()
                .cloned()
                .collect();
            return Err(DeltaError::Protocol {
                table: layout::delta_table(topic),
                reader: protocol.min_reader_version,
                writer: protocol.min_writer_version,
                features: if features.is_empty() {
                    String::new()
                } else {
                    format!(" (features {})", features.join(", "))
                },
            });
        }
        let foreign = snapshot.foreign_files();
        if foreign > 0 && !matches!(plan.start, Start::Committed) {
            return Err(DeltaError::ForeignFiles {
                table: layout::delta_table(topic),
                files: foreign,
            });
        }
        let report = DeltaReport {
            version: snapshot.version(),
            load_seconds: started.elapsed().as_secs_f64(),
            ..DeltaReport::default()
        };
        Ok(DeltaTable {
            topic: topic.to_owned(),
            group: plan.group_id.clone(),
            run_id: run_id.to_owned(),
            staging: staging.to_owned(),
            checkpoint_interval: checkpoint_interval.max(1),
            snapshot,
            columns: None,
            pending: Vec::new(),
            span: BTreeMap::new(),
            added: BTreeSet::new(),
            report,
            by: None,
        })
    }

    /// Makes the table partitioned by time: a new table gets `dt` (and
    /// `hour`) as partition columns; an existing one must have them.
    pub fn partition_by(&mut self, by: PartitionBy) {
        self.by = Some(by);
    }

    /// The table as read at the start of the run, and as this run's
    /// commits changed it.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The `txn` appId of this export's group for `partition`.
    pub fn app_id(&self, partition: i32) -> String {
        format!("{}-{partition}", self.group)
    }

    /// What the table holds of `partition`, for planning its range.
    pub fn partition(&self, partition: i32) -> TablePartition {
        self.snapshot.partition(&self.app_id(partition), partition)
    }

    /// The typed columns and schema of this run's files: the table's
    /// columns with its types, and the columns new to it (which the first
    /// commit adds to the table's schema).
    pub fn columns(
        &mut self,
        base: &SchemaRef,
        wanted: &[ValueField],
    ) -> Result<(Vec<ValueField>, SchemaRef), DeltaError> {
        let table = layout::delta_table(&self.topic);
        let existing = match self.snapshot.metadata() {
            Some(metadata) => Some(schema::parse(&metadata.schema_string).map_err(|reason| {
                DeltaError::Schema {
                    table: table.clone(),
                    reason,
                }
            })?),
            None => None,
        };
        let mut columns =
            schema::reconcile(existing.as_deref(), base, wanted).map_err(|reason| {
                DeltaError::Schema {
                    table: table.clone(),
                    reason,
                }
            })?;
        let partitioned = partition_columns(self.by);
        match self.snapshot.metadata() {
            Some(metadata) if metadata.partition_columns != partitioned => {
                return Err(DeltaError::Schema {
                    table,
                    reason: format!(
                        "it is partitioned by {:?} and the topics.json entry asks for {:?}: \
                         export to another table to change it",
                        metadata.partition_columns, partitioned
                    ),
                });
            }
            Some(_) => {}
            None => {
                for name in &partitioned {
                    if columns
                        .fields
                        .iter()
                        .any(|f| f.name.eq_ignore_ascii_case(name))
                    {
                        return Err(DeltaError::Schema {
                            table,
                            reason: format!(
                                "a value column is named `{name}`, the name of a time partition column"
                            ),
                        });
                    }
                    columns.fields.push(schema::DeltaField {
                        name: name.clone(),
                        data_type: serde_json::json!(if name == "dt" { "date" } else { "integer" }),
                        nullable: true,
                        metadata: serde_json::Map::new(),
                    });
                }
            }
        }
        if columns.changed && existing.is_some() {
            tracing::info!(
                topic = self.topic,
                columns = columns.fields.len(),
                "new columns: the next commit updates the table's schema"
            );
        }
        let out = (columns.typed.clone(), columns.schema.clone());
        self.columns = Some(columns);
        Ok(out)
    }

    /// A data file (and its dead letters) this run stored, to commit.
    pub fn stored(&mut self, file: &WrittenFile) {
        let prefix = format!("{}/", layout::delta_table(&self.topic));
        let relative = |key: &str| key.strip_prefix(&prefix).unwrap_or(key).to_owned();
        let path = relative(&file.key);
        let dead_letters = file.dead_letters.as_ref().map(|(_, key)| relative(key));
        let schema = match &self.columns {
            Some(columns) => columns.schema.clone(),
            None => std::sync::Arc::new(arrow_schema::Schema::empty()),
        };
        let mut add = Add::of_file(file, path.clone(), dead_letters, &schema, now_millis());
        if let (Some(by), Some(location)) = (self.by, file.location) {
            add.partition_values = partition_values(by, location);
        }
        let span = self
            .span
            .entry(file.partition)
            .or_insert((file.first, file.last));
        *span = (span.0.min(file.first), span.1.max(file.last));
        self.added.insert(path);
        self.pending.push(Pending {
            add,
            range: FileRange {
                partition: file.partition,
                first: file.first,
                last: file.last,
                last_time: file.last_time,
                compacted: false,
            },
            rows: file.rows,
        });
    }

    /// Commits the files stored so far, when that leaves no record twice in
    /// the table: an earlier file the run's files overlap only in part (a
    /// re-export with a different file size) waits for the rest of its
    /// range, so that it is replaced in the same commit.
    pub fn commit_ready(&mut self, storage: &Storage) -> Result<(), DeltaError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let partial = self.span.iter().any(|(partition, (first, last))| {
            self.old_files(*partition).iter().any(|f| {
                f.first <= *last && *first <= f.last && !(*first <= f.first && f.last <= *last)
            })
        });
        if partial {
            return Ok(());
        }
        let mut txns = BTreeMap::new();
        for pending in &self.pending {
            let last = txns
                .entry(pending.range.partition)
                .or_insert(pending.range.last);
            *last = (*last).max(pending.range.last);
        }
        self.commit(storage, txns)
    }

    /// Commits the rest at the end of the run: every file stored, and for
    /// each range read (`(partition, end)`, `end` exclusive) its last
    /// offset as the group's `txn` version. A new table is created even
    /// when there is nothing to add.
    pub fn commit_all(&mut self, storage: &Storage, done: &[(i32, i64)]) -> Result<(), DeltaError> {
        let mut txns: BTreeMap<i32, i64> = BTreeMap::new();
        for pending in &self.pending {
            let last = txns
                .entry(pending.range.partition)
                .or_insert(pending.range.last);
            *last = (*last).max(pending.range.last);
        }
        for (partition, end) in done {
            let last = txns.entry(*partition).or_insert(end - 1);
            *last = (*last).max(end - 1);
        }
        self.commit(storage, txns)
    }

    pub fn report(&self) -> DeltaReport {
        DeltaReport {
            version: self.snapshot.version(),
            ..self.report.clone()
        }
    }

    /// The table's files of `partition` that this run did not write.
    fn old_files(&self, partition: i32) -> Vec<crate::export::stored::StoredFile> {
        let mut files = self.snapshot.files_of(partition);
        files.retain(|f| !self.added.contains(&f.key));
        files
    }

    fn commit(&mut self, storage: &Storage, txns: BTreeMap<i32, i64>) -> Result<(), DeltaError> {
        let now = now_millis();
        let table = layout::delta_table(&self.topic);
        // Offsets only move forward: a re-export of a prefix of what the
        // group committed leaves the rest of its files, and its version.
        let txns: Vec<Txn> = txns
            .into_iter()
            .map(|(partition, last)| (self.app_id(partition), last))
            .filter(|(app_id, last)| self.snapshot.txn(app_id).is_none_or(|held| *last > held))
            .map(|(app_id, version)| Txn {
                app_id,
                version,
                last_updated: Some(now),
            })
            .collect();
        let removes: Vec<Remove> = self
            .span
            .iter()
            .flat_map(|(partition, (first, last))| {
                self.old_files(*partition)
                    .into_iter()
                    .filter(|f| *first <= f.first && f.last <= *last)
            })
            .map(|f| Remove {
                path: f.key,
                deletion_timestamp: Some(now),
                data_change: true,
                extended_file_metadata: None,
                partition_values: None,
                size: None,
            })
            .collect();
        let creating = self.snapshot.version().is_none();
        let schema_changed = self.columns.as_ref().is_some_and(|c| c.changed);
        if self.pending.is_empty() && txns.is_empty() && removes.is_empty() && !creating {
            return Ok(());
        }
        if !removes.is_empty()
            && self
                .snapshot
                .metadata()
                .and_then(|m| m.property("delta.appendOnly"))
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(DeltaError::AppendOnly {
                table,
                files: removes.len(),
            });
        }

        let rows: u64 = self.pending.iter().map(|p| p.rows).sum();
        let bytes: i64 = self.pending.iter().map(|p| p.add.size).sum();
        let mut actions = vec![Action {
            commit_info: Some(json!({
                "timestamp": now,
                "operation": "WRITE",
                "operationParameters": {
                    "mode": if removes.is_empty() { "Append" } else { "Overwrite" },
                    "partitionBy": serde_json::to_string(&partition_columns(self.by)).unwrap_or_default(),
                },
                "isBlindAppend": removes.is_empty(),
                "operationMetrics": {
                    "numFiles": self.pending.len().to_string(),
                    "numOutputRows": rows.to_string(),
                    "numOutputBytes": bytes.to_string(),
                    "numRemovedFiles": removes.len().to_string(),
                },
                "engineInfo": concat!("sluice/", env!("CARGO_PKG_VERSION")),
                // Makes these bytes this commit's alone, so that a lost
                // answer can be told from another writer's commit.
                "txnId": uuid::Uuid::new_v4().to_string(),
                "sluiceRunId": self.run_id,
            })),
            ..Action::default()
        }];
        if creating {
            actions.push(Action {
                protocol: Some(Protocol::sluice()),
                ..Action::default()
            });
        }
        if creating || schema_changed {
            let columns = self.columns.as_ref().ok_or_else(|| DeltaError::Schema {
                table: table.clone(),
                reason: "no columns were chosen before the commit (a bug)".into(),
            })?;
            let schema_string = schema::schema_string(&columns.fields);
            let metadata = match self.snapshot.metadata() {
                Some(current) => Metadata {
                    schema_string,
                    ..current.clone()
                },
                None => Metadata {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: None,
                    description: Some(format!("Kafka topic {}, exported by Sluice", self.topic)),
                    format: Format {
                        provider: "parquet".into(),
                        options: StringMap::new(),
                    },
                    schema_string,
                    partition_columns: partition_columns(self.by),
                    created_time: Some(now),
                    configuration: StringMap::new(),
                },
            };
            actions.push(Action {
                metadata: Some(metadata),
                ..Action::default()
            });
        }
        actions.extend(txns.into_iter().map(|txn| Action {
            txn: Some(txn),
            ..Action::default()
        }));
        let removed = removes.len();
        actions.extend(removes.into_iter().map(|remove| Action {
            remove: Some(remove),
            ..Action::default()
        }));
        actions.extend(self.pending.iter().map(|p| Action {
            add: Some(p.add.clone()),
            ..Action::default()
        }));

        let started = Instant::now();
        let version = commit(storage, &mut self.snapshot, actions)?;
        self.report.commit_seconds += started.elapsed().as_secs_f64();
        self.report.commits += 1;
        self.report.removed += removed;
        self.pending.clear();
        if let Some(columns) = &mut self.columns {
            columns.changed = false;
        }
        tracing::info!(topic = self.topic, table, version, "table committed");
        crate::crash_point!("delta::after-commit");
        self.checkpoint_if_due(storage, version, now);
        Ok(())
    }

    /// The data files' schema this run writes (set by [`Self::columns`]).
    pub fn file_schema(&self) -> SchemaRef {
        match &self.columns {
            Some(columns) => columns.schema.clone(),
            None => std::sync::Arc::new(arrow_schema::Schema::empty()),
        }
    }

    /// The `add` of a file a compaction wrote: no data change, never
    /// merged again, in its time partition.
    pub fn compacted_add(&self, file: &WrittenFile) -> Add {
        let prefix = format!("{}/", layout::delta_table(&self.topic));
        let relative = |key: &str| key.strip_prefix(&prefix).unwrap_or(key).to_owned();
        let dead_letters = file.dead_letters.as_ref().map(|(_, key)| relative(key));
        let mut add = Add::of_file(
            file,
            relative(&file.key),
            dead_letters,
            &self.file_schema(),
            now_millis(),
        )
        .compacted();
        if let (Some(by), Some(location)) = (self.by, file.location) {
            add.partition_values = partition_values(by, location);
        }
        add
    }

    /// Commits a compaction: `adds` replace the files at `removes`, with
    /// `dataChange` false on both sides, no `txn` (the records and offsets
    /// are the same), in one commit; appends by other runs never conflict
    /// with it, as it touches no offsets they add.
    pub fn commit_rewrite(
        &mut self,
        storage: &Storage,
        removes: &[String],
        adds: Vec<Add>,
    ) -> Result<u64, DeltaError> {
        let now = now_millis();
        let live = self.snapshot.live();
        let bytes: i64 = adds.iter().map(|a| a.size).sum();
        let mut actions = vec![Action {
            commit_info: Some(json!({
                "timestamp": now,
                "operation": "OPTIMIZE",
                "operationParameters": {"predicate": "[]", "zOrderBy": "[]"},
                "isBlindAppend": false,
                "operationMetrics": {
                    "numAddedFiles": adds.len().to_string(),
                    "numRemovedFiles": removes.len().to_string(),
                    "numAddedBytes": bytes.to_string(),
                },
                "engineInfo": concat!("sluice/", env!("CARGO_PKG_VERSION")),
                "txnId": uuid::Uuid::new_v4().to_string(),
                "sluiceRunId": self.run_id,
            })),
            ..Action::default()
        }];
        actions.extend(removes.iter().map(|path| Action {
            remove: Some(Remove {
                path: path.clone(),
                deletion_timestamp: Some(now),
                data_change: false,
                extended_file_metadata: Some(true),
                partition_values: live.get(path).map(|f| {
                    f.partition_values
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect()
                }),
                size: live.get(path).map(|f| f.size),
            }),
            ..Action::default()
        }));
        actions.extend(adds.into_iter().map(|add| Action {
            add: Some(add),
            ..Action::default()
        }));
        self.commit_actions(storage, actions, now)
    }

    /// Commits the table property `sluice.completeThrough` (RFC 3339: every
    /// time partition ending by then is complete), naming in the commit the
    /// partitions it completes.
    pub fn commit_complete_through(
        &mut self,
        storage: &Storage,
        through: &str,
        completed: &[String],
    ) -> Result<u64, DeltaError> {
        let now = now_millis();
        let Some(current) = self.snapshot.metadata().cloned() else {
            return Err(DeltaError::Schema {
                table: layout::delta_table(&self.topic),
                reason: "completeness before the table exists (a bug)".into(),
            });
        };
        let mut metadata = current;
        metadata.configuration.insert(
            "sluice.completeThrough".to_owned(),
            Some(through.to_owned()),
        );
        let actions = vec![
            Action {
                commit_info: Some(json!({
                    "timestamp": now,
                    "operation": "SET TBLPROPERTIES",
                    "operationParameters": {"properties": {"sluice.completeThrough": through}},
                    "isBlindAppend": true,
                    "engineInfo": concat!("sluice/", env!("CARGO_PKG_VERSION")),
                    "txnId": uuid::Uuid::new_v4().to_string(),
                    "sluiceRunId": self.run_id,
                    "sluiceCompleted": completed,
                })),
                ..Action::default()
            },
            Action {
                metadata: Some(metadata),
                ..Action::default()
            },
        ];
        self.commit_actions(storage, actions, now)
    }

    /// Commits actions that are not a run's files, then a checkpoint if
    /// one is due.
    fn commit_actions(
        &mut self,
        storage: &Storage,
        actions: Vec<Action>,
        now: i64,
    ) -> Result<u64, DeltaError> {
        let started = Instant::now();
        let version = commit(storage, &mut self.snapshot, actions)?;
        self.report.commit_seconds += started.elapsed().as_secs_f64();
        self.report.commits += 1;
        tracing::info!(topic = self.topic, version, "table committed");
        crate::crash_point!("delta::after-commit");
        self.checkpoint_if_due(storage, version, now);
        Ok(version)
    }

    /// A checkpoint every N versions. One that fails leaves the table as
    /// it is (readers replay more commits), so it is only logged.
    fn checkpoint_if_due(&mut self, storage: &Storage, version: u64, now: i64) {
        let interval = self
            .snapshot
            .metadata()
            .and_then(|m| m.property("delta.checkpointInterval"))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(self.checkpoint_interval);
        if version == 0 || !version.is_multiple_of(interval) {
            return;
        }
        let started = Instant::now();
        let retention = checkpoint::retention_millis(self.snapshot.metadata());
        match checkpoint::write(
            storage,
            &self.topic,
            version,
            self.snapshot.checkpoint(),
            retention,
            now,
            &self.staging,
        ) {
            Ok(written) => {
                self.snapshot.set_checkpoint(version);
                self.report.checkpoints += 1;
                self.report.checkpoint_seconds += started.elapsed().as_secs_f64();
                tracing::info!(
                    topic = self.topic,
                    version,
                    actions = written.actions,
                    files = written.adds,
                    bytes = written.bytes,
                    "checkpoint written"
                );
            }
            Err(error) => {
                tracing::warn!(topic = self.topic, version, %error, "checkpoint not written; readers replay the commits instead");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Timestamps, ValueColumn, kafka_schema};

    /// A local table whose version 0 holds `actions` (a protocol, a
    /// metadata and whatever else) with this export's schema.
    fn table_with(
        root: &Path,
        protocol: Protocol,
        config: StringMap,
        more: Vec<Action>,
    ) -> Storage {
        let storage = Storage::open(root.to_str().unwrap(), &Default::default()).unwrap();
        let base = kafka_schema(ValueColumn::Json, Timestamps::Micros);
        let fields = schema::reconcile(None, &base, &[]).unwrap().fields;
        let mut actions = vec![
            Action {
                protocol: Some(protocol),
                ..Action::default()
            },
            Action {
                metadata: Some(Metadata {
                    id: "id".into(),
                    name: None,
                    description: None,
                    format: Format {
                        provider: "parquet".into(),
                        options: StringMap::new(),
                    },
                    schema_string: schema::schema_string(&fields),
                    partition_columns: Vec::new(),
                    created_time: None,
                    configuration: config,
                }),
                ..Action::default()
            },
        ];
        actions.extend(more);
        let mut snapshot = Snapshot::empty("t");
        commit(&storage, &mut snapshot, actions).unwrap();
        storage
    }

    fn file(partition: i32, first: i64, last: i64, run: &str) -> WrittenFile {
        WrittenFile {
            staging: PathBuf::new(),
            key: format!("t/part-{partition}-{first}-{last}-{run}.zstd.parquet"),
            partition,
            first,
            last,
            rows: 1,
            bytes: 1,
            dead_lettered: 0,
            dead_letters: None,
            stats: Vec::new(),
            location: None,
            late: 0,
            last_time: None,
        }
    }

    fn add(file: &WrittenFile, tagged: bool) -> Action {
        let mut add = Add::of_file(
            file,
            file.key[2..].to_owned(),
            None,
            &arrow_schema::Schema::empty(),
            1,
        );
        if !tagged {
            add.tags = None;
        }
        Action {
            add: Some(add),
            ..Action::default()
        }
    }

    fn open(storage: &Storage, root: &Path, plan: &ReadPlan) -> Result<DeltaTable, DeltaError> {
        DeltaTable::open(storage, plan, "run", &root.join(".staging"), 10)
    }

    #[test]
    fn a_protocol_past_1_2_is_refused_with_its_versions() {
        let root = tempfile::tempdir().unwrap();
        let protocol = Protocol {
            min_reader_version: 3,
            min_writer_version: 7,
            reader_features: Some(vec!["deletionVectors".into()]),
            writer_features: Some(vec!["deletionVectors".into()]),
        };
        let storage = table_with(root.path(), protocol, StringMap::new(), Vec::new());
        let error = open(&storage, root.path(), &ReadPlan::earliest("t"))
            .err()
            .expect("refused");
        let text = error.to_string();
        assert!(
            text.contains("reader version 3") && text.contains("deletionVectors"),
            "{text}"
        );
    }

    #[test]
    fn a_re_export_is_refused_over_files_of_other_writers_and_on_append_only_tables() {
        let root = tempfile::tempdir().unwrap();
        let theirs = add(&file(0, 0, 9, "optimize"), false);
        let storage = table_with(
            root.path(),
            Protocol::sluice(),
            StringMap::new(),
            vec![theirs],
        );
        let error = open(&storage, root.path(), &ReadPlan::earliest("t"))
            .err()
            .expect("refused");
        assert!(
            matches!(error, DeltaError::ForeignFiles { files: 1, .. }),
            "{error}"
        );
        let mut committed = ReadPlan::earliest("t");
        committed.start = Start::Committed;
        assert!(
            open(&storage, root.path(), &committed).is_ok(),
            "runs from the group go on"
        );

        let root = tempfile::tempdir().unwrap();
        let append_only =
            StringMap::from([("delta.appendOnly".to_owned(), Some("true".to_owned()))]);
        let ours = add(&file(0, 0, 9, "old"), true);
        let storage = table_with(root.path(), Protocol::sluice(), append_only, vec![ours]);
        let mut table = open(&storage, root.path(), &ReadPlan::earliest("t")).unwrap();
        table
            .columns(&kafka_schema(ValueColumn::Json, Timestamps::Micros), &[])
            .unwrap();
        table.stored(&file(0, 0, 14, "new"));
        let error = table.commit_all(&storage, &[(0, 15)]).unwrap_err();
        assert!(
            matches!(error, DeltaError::AppendOnly { files: 1, .. }),
            "{error}"
        );
        assert!(
            storage
                .get_if_exists(&super::super::files::commit_key("t", 1))
                .unwrap()
                .is_none(),
            "nothing committed"
        );
    }
}
