//! `sluice export status`: the time buckets of each time-partitioned topic
//! of a topics.json file, newest last, each complete or open, with its
//! marker and how many files it holds, read from the output alone.

use super::buckets::{Bucket, Location};
use super::complete::State;
use super::delta::Snapshot;
use super::error::ExportError;
use super::layout;
use super::run::RunError;
use crate::config::{Connections, ExportFormat, PartitionBy, TopicEntry};
use crate::storage::Storage;

/// One bucket's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketStatus {
    /// `dt=2026-12-05/hour=14`.
    pub bucket: String,
    /// Every partition has passed it.
    pub complete: bool,
    /// Its marker is stored.
    pub marker: bool,
    /// Data files in its folder (for a Delta table: live in the table).
    pub files: usize,
    /// Files in its `_late/` folder.
    pub late_files: usize,
}

/// A topic's buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStatus {
    pub topic: String,
    pub format: ExportFormat,
    pub partition_by: PartitionBy,
    /// Every bucket ending by then is complete.
    pub complete_through: Option<i64>,
    pub buckets: Vec<BucketStatus>,
}

/// Each time-partitioned topic's status, or why it could not be read.
pub type Statuses = Vec<(String, Result<TopicStatus, ExportError>)>;

/// The newest `last` buckets of every time-partitioned entry, in the
/// order of the file; entries without `partition_by` are left out.
pub fn export_status(
    topics: &[TopicEntry],
    connections: &Connections,
    out: Option<&str>,
    last: usize,
) -> Result<Statuses, RunError> {
    let url = out.map_or_else(|| connections.storage_url(), str::to_owned);
    let storage = Storage::open(&url, &connections.azure_credentials())?;
    Ok(topics
        .iter()
        .filter_map(|entry| {
            let by = entry.partition_by?;
            Some((
                entry.topic.clone(),
                topic_status(&storage, &entry.topic, entry.format, by, last),
            ))
        })
        .collect())
}

fn topic_status(
    storage: &Storage,
    topic: &str,
    format: ExportFormat,
    by: PartitionBy,
    last: usize,
) -> Result<TopicStatus, ExportError> {
    let state = State::load(storage, topic, format)?;
    let mut status = TopicStatus {
        topic: topic.to_owned(),
        format,
        partition_by: by,
        complete_through: state.complete_through,
        buckets: Vec::new(),
    };
    let (Some(first), Some(newest)) = (state.first_bucket, state.newest_bucket) else {
        return Ok(status);
    };
    let live = match format {
        ExportFormat::Delta => {
            let staging = storage.staging_dir("status").join(topic);
            let snapshot = Snapshot::load(storage, topic, &staging)?;
            let _ = std::fs::remove_dir_all(&staging);
            Some(snapshot)
        }
        ExportFormat::Parquet => None,
    };
    let mut buckets: Vec<Bucket> = by
        .ending_by(first, by.end(Bucket { start: newest }))
        .collect();
    let keep = buckets.len().saturating_sub(last.max(1));
    buckets.drain(..keep);
    for bucket in buckets {
        let path = by.path(bucket);
        let count = |late: bool| -> Result<usize, ExportError> {
            let dir = layout::bucket_dir(topic, by, Location { bucket, late });
            Ok(storage
                .list(&dir)?
                .iter()
                .filter(|k| k.ends_with(".parquet"))
                .count())
        };
        let (files, late_files) = match &live {
            Some(snapshot) => {
                let prefix = format!("{path}/");
                let files = snapshot
                    .live()
                    .keys()
                    .filter(|p| p.starts_with(&prefix))
                    .count();
                (files, 0)
            }
            None => (count(false)?, count(true)?),
        };
        status.buckets.push(BucketStatus {
            complete: state
                .complete_through
                .is_some_and(|through| by.end(bucket) <= through),
            marker: storage
                .get_if_exists(&layout::marker_key(topic, format, by, bucket))?
                .is_some(),
            bucket: path,
            files,
            late_files,
        });
    }
    Ok(status)
}
