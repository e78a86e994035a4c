//! Checkpoints (`PROTOCOL.md`, "Checkpoints"): the table's state at one
//! version as a single Parquet file, `<version>.checkpoint.parquet` (the
//! classic V1 kind every reader knows), and `_last_checkpoint` pointing to
//! it, so that a reader replays only the commits after it. Both ways go a
//! batch of actions at a time: the previous checkpoint is streamed through
//! into the new one, so memory holds a batch and the few commits since,
//! whatever the size of the table.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::actions::{Action, Add, Metadata, Protocol, Remove, Txn, parse_commit};
use super::error::DeltaError;
use super::files::{LastCheckpoint, checkpoint_key, commit_key, last_checkpoint_key};
use crate::export::layout;
use crate::storage::Storage;

/// Actions per Arrow batch, read or written.
const BATCH: usize = 4096;

/// The columns of a checkpoint that Sluice reads: the actions of protocol
/// 1/2, without what only other engines use (`stats_parsed`, ...).
const READ: [&str; 16] = [
    "txn",
    "add.path",
    "add.partitionValues",
    "add.size",
    "add.modificationTime",
    "add.dataChange",
    "add.stats",
    "add.tags",
    "remove.path",
    "remove.deletionTimestamp",
    "remove.dataChange",
    "remove.extendedFileMetadata",
    "remove.partitionValues",
    "remove.size",
    "metaData",
    "protocol",
];

/// What a checkpoint written holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub version: u64,
    pub actions: u64,
    pub adds: u64,
    pub bytes: u64,
}

fn error(topic: &str, reason: impl ToString) -> DeltaError {
    DeltaError::Checkpoint {
        table: layout::delta_table(topic),
        reason: reason.to_string(),
    }
}

/// Calls `each` with every action of the checkpoint of `version`, in
/// batches read from a local copy in `staging`.
pub fn read(
    storage: &Storage,
    topic: &str,
    version: u64,
    staging: &Path,
    mut each: impl FnMut(Action) -> Result<(), DeltaError>,
) -> Result<(), DeltaError> {
    let key = checkpoint_key(topic, version);
    let local = staging.join(format!("{topic}.{version}.checkpoint.parquet"));
    storage.download(&key, &local)?;
    let result = (|| {
        let corrupt = |reason: String| DeltaError::Corrupt {
            key: key.clone(),
            reason,
        };
        let file = File::open(&local).map_err(|e| corrupt(e.to_string()))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(e.to_string()))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), READ);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(BATCH)
            .build()
            .map_err(|e| corrupt(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| corrupt(e.to_string()))?;
            // Rows as JSON lines, so that one type reads commits and
            // checkpoints alike; null actions are left out.
            let mut lines = arrow_json::WriterBuilder::new()
                .with_explicit_nulls(false)
                .build::<_, arrow_json::writer::LineDelimited>(Vec::new());
            lines.write(&batch).map_err(|e| corrupt(e.to_string()))?;
            lines.finish().map_err(|e| corrupt(e.to_string()))?;
            for action in parse_commit(&lines.into_inner()).map_err(corrupt)? {
                each(action)?;
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&local);
    result
}

/// The Arrow schema of the checkpoints Sluice writes: a nullable struct
/// column per action, Parquet's names for maps and lists.
fn schema() -> SchemaRef {
    let text = || DataType::Utf8;
    let map = |name: &str| {
        let entries = Fields::from(vec![
            Field::new("key", text(), false),
            Field::new("value", text(), true),
        ]);
        Field::new(
            name,
            DataType::Map(
                Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
                false,
            ),
            true,
        )
    };
    let structure = |name: &str, fields: Vec<Field>| {
        Field::new(name, DataType::Struct(Fields::from(fields)), true)
    };
    Arc::new(Schema::new(vec![
        structure(
            "txn",
            vec![
                Field::new("appId", text(), true),
                Field::new("version", DataType::Int64, true),
                Field::new("lastUpdated", DataType::Int64, true),
            ],
        ),
        structure(
            "add",
            vec![
                Field::new("path", text(), true),
                map("partitionValues"),
                Field::new("size", DataType::Int64, true),
                Field::new("modificationTime", DataType::Int64, true),
                Field::new("dataChange", DataType::Boolean, true),
                Field::new("stats", text(), true),
                map("tags"),
            ],
        ),
        structure(
            "remove",
            vec![
                Field::new("path", text(), true),
                Field::new("deletionTimestamp", DataType::Int64, true),
                Field::new("dataChange", DataType::Boolean, true),
                Field::new("extendedFileMetadata", DataType::Boolean, true),
                map("partitionValues"),
                Field::new("size", DataType::Int64, true),
            ],
        ),
        structure(
            "metaData",
            vec![
                Field::new("id", text(), true),
                Field::new("name", text(), true),
                Field::new("description", text(), true),
                structure(
                    "format",
                    vec![Field::new("provider", text(), true), map("options")],
                ),
                Field::new("schemaString", text(), true),
                Field::new(
                    "partitionColumns",
                    DataType::List(Arc::new(Field::new("element", text(), true))),
                    true,
                ),
                Field::new("createdTime", DataType::Int64, true),
                map("configuration"),
            ],
        ),
        structure(
            "protocol",
            vec![
                Field::new("minReaderVersion", DataType::Int32, true),
                Field::new("minWriterVersion", DataType::Int32, true),
            ],
        ),
    ]))
}

/// The checkpoint file being written, a batch at a time.
struct Out {
    topic: String,
    decoder: arrow_json::reader::Decoder,
    pending: Vec<Action>,
    writer: ArrowWriter<File>,
    actions: u64,
    adds: u64,
}

impl Out {
    fn push(&mut self, action: Action) -> Result<(), DeltaError> {
        self.actions += 1;
        self.adds += u64::from(action.add.is_some());
        self.pending.push(action);
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeltaError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.decoder
            .serialize(&self.pending)
            .map_err(|e| error(&self.topic, e))?;
        self.pending.clear();
        if let Some(batch) = self.decoder.flush().map_err(|e| error(&self.topic, e))? {
            self.writer
                .write(&batch)
                .map_err(|e| error(&self.topic, e))?;
        }
        Ok(())
    }
}

/// How long a `remove` stays in checkpoints as a tombstone
/// (`delta.deletedFileRetentionDuration`, one week by default), in ms;
/// `None` when the property says something this does not read, and then
/// every tombstone is kept (keeping one too long costs only space).
pub fn retention_millis(metadata: Option<&Metadata>) -> Option<i64> {
    const WEEK: i64 = 7 * 24 * 3600 * 1000;
    let Some(text) = metadata.and_then(|m| m.property("delta.deletedFileRetentionDuration")) else {
        return Some(WEEK);
    };
    let mut words = text.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("interval") {
        return None;
    }
    let count: i64 = words.next()?.parse().ok()?;
    let unit: i64 = match words.next()?.to_ascii_lowercase().trim_end_matches('s') {
        "millisecond" => 1,
        "second" => 1000,
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        "week" => WEEK,
        _ => return None,
    };
    if words.next().is_some() {
        return None;
    }
    count.checked_mul(unit)
}

/// Writes the checkpoint of `version` from the checkpoint of `previous`
/// (when there is one) and the commits after it, then points
/// `_last_checkpoint` to it. Tombstones older than `retention` (ms, at
/// `now`) are dropped.
pub fn write(
    storage: &Storage,
    topic: &str,
    version: u64,
    previous: Option<u64>,
    retention: Option<i64>,
    now: i64,
    staging: &Path,
) -> Result<Written, DeltaError> {
    // The commits since the previous checkpoint, reconciled in memory:
    // they are few (a checkpoint every N commits).
    let mut adds: BTreeMap<String, Add> = BTreeMap::new();
    let mut removes: BTreeMap<String, Remove> = BTreeMap::new();
    let mut txns: BTreeMap<String, Txn> = BTreeMap::new();
    let (mut protocol, mut metadata): (Option<Protocol>, Option<Metadata>) = (None, None);
    for v in previous.map_or(0, |p| p.saturating_add(1))..=version {
        let key = commit_key(topic, v);
        let bytes = storage
            .get_if_exists(&key)?
            .ok_or_else(|| error(topic, format!("version {v} is missing")))?;
        let actions = parse_commit(&bytes).map_err(|reason| DeltaError::Corrupt { key, reason })?;
        for action in actions {
            if let Some(add) = action.add {
                removes.remove(&add.path);
                adds.insert(add.path.clone(), add);
            }
            if let Some(remove) = action.remove {
                adds.remove(&remove.path);
                removes.insert(remove.path.clone(), remove);
            }
            if let Some(txn) = action.txn {
                txns.insert(txn.app_id.clone(), txn);
            }
            protocol = action.protocol.or(protocol);
            metadata = action.metadata.or(metadata);
        }
    }
    let live = |remove: &Remove| match (retention, remove.deletion_timestamp) {
        (Some(keep), Some(at)) => at.saturating_add(keep) > now,
        _ => true,
    };

    let local = staging.join(format!("{topic}.{version}.checkpoint.parquet.partial"));
    std::fs::create_dir_all(staging).map_err(|e| error(topic, e))?;
    let file = File::create(&local).map_err(|e| error(topic, e))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let schema = schema();
    let mut out = Out {
        topic: topic.to_owned(),
        decoder: arrow_json::ReaderBuilder::new(schema.clone())
            .with_batch_size(BATCH)
            .build_decoder()
            .map_err(|e| error(topic, e))?,
        pending: Vec::with_capacity(BATCH),
        writer: ArrowWriter::try_new(file, schema, Some(properties))
            .map_err(|e| error(topic, e))?,
        actions: 0,
        adds: 0,
    };
    let result = (|| {
        if let Some(previous) = previous {
            read(storage, topic, previous, staging, |action| {
                let Action {
                    protocol: p,
                    metadata: m,
                    txn,
                    add,
                    remove,
                    ..
                } = action;
                let since = |path: &str| adds.contains_key(path) || removes.contains_key(path);
                if let Some(add) = add.filter(|a| !since(&a.path)) {
                    out.push(Action {
                        add: Some(add),
                        ..Action::default()
                    })?;
                }
                if let Some(remove) = remove.filter(|r| !since(&r.path) && live(r)) {
                    out.push(Action {
                        remove: Some(remove),
                        ..Action::default()
                    })?;
                }
                if let Some(txn) = txn {
                    txns.entry(txn.app_id.clone()).or_insert(txn);
                }
                if protocol.is_none() {
                    protocol = p;
                }
                if metadata.is_none() {
                    metadata = m;
                }
                Ok(())
            })?;
        }
        let (Some(protocol), Some(metadata)) = (protocol, metadata) else {
            return Err(error(topic, "the log has no protocol or no metadata"));
        };
        for add in adds.into_values() {
            out.push(Action {
                add: Some(add),
                ..Action::default()
            })?;
        }
        for remove in removes.into_values().filter(live) {
            out.push(Action {
                remove: Some(remove),
                ..Action::default()
            })?;
        }
        for txn in txns.into_values() {
            out.push(Action {
                txn: Some(txn),
                ..Action::default()
            })?;
        }
        out.push(Action {
            protocol: Some(protocol),
            ..Action::default()
        })?;
        out.push(Action {
            metadata: Some(metadata),
            ..Action::default()
        })?;
        out.flush()?;
        let (actions, adds) = (out.actions, out.adds);
        out.writer.close().map_err(|e| error(topic, e))?;
        let bytes = std::fs::metadata(&local)
            .map_err(|e| error(topic, e))?
            .len();
        // A checkpoint may be written again over itself (the protocol lets
        // the last writer win): both hold the same state.
        storage.upload(&local, &checkpoint_key(topic, version))?;
        crate::crash_point!("delta::between-checkpoint-and-pointer");
        let pointer = LastCheckpoint {
            version,
            size: actions,
            parts: None,
            size_in_bytes: Some(bytes),
            num_of_add_files: Some(adds),
        };
        let local_pointer = staging.join(format!("{topic}._last_checkpoint"));
        std::fs::write(
            &local_pointer,
            serde_json::to_vec(&pointer).map_err(|e| error(topic, e))?,
        )
        .map_err(|e| error(topic, e))?;
        storage.upload(&local_pointer, &last_checkpoint_key(topic))?;
        Ok(Written {
            version,
            actions,
            adds,
            bytes,
        })
    })();
    let _ = std::fs::remove_file(&local);
    result
}

#[cfg(test)]
mod tests {
    use super::super::actions::{Format, StringMap};
    use super::super::commit::commit;
    use super::super::log::Snapshot;
    use super::*;

    fn add(path: &str) -> Action {
        Action {
            add: Some(Add {
                path: path.into(),
                partition_values: StringMap::new(),
                size: 10,
                modification_time: 1,
                data_change: true,
                stats: Some(r#"{"numRecords":1}"#.into()),
                tags: Some(
                    [
                        ("sluice.partition".to_owned(), Some("0".to_owned())),
                        ("sluice.firstOffset".to_owned(), Some("0".to_owned())),
                        ("sluice.lastOffset".to_owned(), Some("0".to_owned())),
                    ]
                    .into(),
                ),
            }),
            ..Action::default()
        }
    }

    fn remove(path: &str, at: i64) -> Action {
        Action {
            remove: Some(Remove {
                path: path.into(),
                deletion_timestamp: Some(at),
                data_change: true,
                extended_file_metadata: None,
                partition_values: None,
                size: None,
            }),
            ..Action::default()
        }
    }

    fn txn(app_id: &str, version: i64) -> Action {
        Action {
            txn: Some(Txn {
                app_id: app_id.into(),
                version,
                last_updated: None,
            }),
            ..Action::default()
        }
    }

    fn metadata() -> Metadata {
        Metadata {
            id: "id".into(),
            name: None,
            description: None,
            format: Format {
                provider: "parquet".into(),
                options: StringMap::new(),
            },
            schema_string: r#"{"type":"struct","fields":[]}"#.into(),
            partition_columns: Vec::new(),
            created_time: Some(1),
            configuration: StringMap::new(),
        }
    }

    /// The table after replaying every commit's JSON, no checkpoint.
    fn replayed(storage: &Storage, versions: u64) -> Snapshot {
        let mut snapshot = Snapshot::empty("t");
        for version in 0..=versions {
            let bytes = storage.get(&commit_key("t", version)).unwrap();
            snapshot.apply(version, &parse_commit(&bytes).unwrap());
        }
        snapshot
    }

    #[test]
    fn a_checkpoint_holds_what_the_commits_replay_to_streamed_over_batches() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path().to_str().unwrap(), &Default::default()).unwrap();
        let staging = root.path().join(".staging");
        let now = 10 * 7 * 24 * 3600 * 1000;
        let long_ago = 1;
        let mut snapshot = Snapshot::empty("t");
        // More files than a batch holds, so that reading and writing both
        // go over batch boundaries.
        let mut first = vec![
            Action {
                protocol: Some(Protocol::sluice()),
                ..Action::default()
            },
            Action {
                metadata: Some(metadata()),
                ..Action::default()
            },
            txn("g-0", 5000),
        ];
        first.extend((0..BATCH + 900).map(|i| add(&format!("f{i}.parquet"))));
        let commits = vec![
            first,
            vec![
                remove("f0.parquet", now - 1),
                add("new.parquet"),
                txn("g-0", 5001),
            ],
            vec![
                remove("f1.parquet", long_ago),
                add("f0.parquet"),
                txn("h-0", 3),
            ],
        ];
        for actions in commits {
            commit(&storage, &mut snapshot, actions).unwrap();
        }
        let written = write(&storage, "t", 2, None, Some(1000), now, &staging).unwrap();
        assert_eq!(written.adds as usize, BATCH + 900);
        for actions in [
            vec![
                remove("f2.parquet", now - 5),
                remove("f3.parquet", long_ago),
                txn("g-0", 5002),
            ],
            vec![remove("new.parquet", now - 3), add("f1.parquet")],
        ] {
            commit(&storage, &mut snapshot, actions).unwrap();
        }
        // From the checkpoint of version 2, streamed, and two commits.
        let written = write(&storage, "t", 4, Some(2), Some(1000), now, &staging).unwrap();
        assert_eq!(written.version, 4);

        let mut loaded = Snapshot::load(&storage, "t", &staging).unwrap();
        assert_eq!(loaded.checkpoint(), Some(4));
        let mut expected = replayed(&storage, 4);
        expected.set_checkpoint(4);
        loaded.set_checkpoint(4);
        assert_eq!(loaded, expected);
        assert_eq!(loaded.txn("g-0"), Some(5002));
        assert_eq!(loaded.txn("h-0"), Some(3));
        assert_eq!(
            loaded.files_of(0).len(),
            BATCH + 900 - 2,
            "f2, f3 and new gone, f0 and f1 back"
        );

        // Tombstones: the recent ones kept; f3's, older than the retention,
        // and those of f0 and f1, added again, not.
        let mut tombstones = Vec::new();
        read(&storage, "t", 4, &staging, |action| {
            tombstones.extend(action.remove.map(|r| r.path));
            Ok(())
        })
        .unwrap();
        tombstones.sort();
        assert_eq!(tombstones, ["f2.parquet", "new.parquet"]);
        let pointer: LastCheckpoint =
            serde_json::from_slice(&storage.get(&last_checkpoint_key("t")).unwrap()).unwrap();
        assert_eq!(
            (pointer.version, pointer.size, pointer.num_of_add_files),
            (4, written.actions, Some(written.adds))
        );
    }

    #[test]
    fn tombstones_are_kept_as_long_as_the_table_says() {
        let with = |value: &str| Metadata {
            id: "x".into(),
            name: None,
            description: None,
            format: super::super::actions::Format {
                provider: "parquet".into(),
                options: Default::default(),
            },
            schema_string: "{}".into(),
            partition_columns: Vec::new(),
            created_time: None,
            configuration: [(
                "delta.deletedFileRetentionDuration".to_owned(),
                Some(value.to_owned()),
            )]
            .into(),
        };
        assert_eq!(retention_millis(None), Some(604_800_000));
        assert_eq!(
            retention_millis(Some(&with("interval 2 days"))),
            Some(172_800_000)
        );
        assert_eq!(
            retention_millis(Some(&with("INTERVAL 1 hour"))),
            Some(3_600_000)
        );
        assert_eq!(retention_millis(Some(&with("interval 1 fortnight"))), None);
        assert_eq!(retention_millis(Some(&with("7 days"))), None);
    }
}
