//! A consumer-group member that commits only finished records: the caller
//! reports each record finished (produced and acknowledged, dead-lettered or
//! dropped) and the commit position of a partition never passes an
//! unfinished one. When the group takes partitions away, what is finished is
//! committed first and the rest is left for the next owner to read again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::config::KafkaConfig;
use super::convert::to_record;
use super::error::KafkaError;
use super::progress::OffsetTracker;
use crate::record::{KafkaRecord, RecordRef};

/// Records received by one poll, and whether the group reassigned
/// partitions since the last one (anything waiting must then be forgotten:
/// it will be read again from the committed positions).
#[derive(Debug, Default)]
pub struct Polled {
    pub records: Vec<KafkaRecord>,
    pub rebalanced: bool,
}

pub struct GroupConsumer {
    consumer: BaseConsumer<GroupContext>,
    group: String,
    topics: String,
}

struct GroupContext {
    group: String,
    tracker: Mutex<OffsetTracker>,
    rebalanced: AtomicBool,
}

impl ClientContext for GroupContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::logs::log_line(level, facility, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        super::logs::log_error(&error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                let mut tracker = lock(&self.tracker);
                let commits = tracker.take_commits();
                if let Err(error) = commit(consumer, &commits, CommitMode::Sync) {
                    tracing::warn!(
                        group = self.group,
                        %error,
                        "committing before giving partitions up failed; the next owner re-reads them"
                    );
                }
                tracker.clear();
                self.rebalanced.store(true, Ordering::SeqCst);
                tracing::info!(
                    group = self.group,
                    partitions = partitions.count(),
                    "partitions revoked"
                );
            }
            Rebalance::Assign(partitions) => {
                tracing::info!(
                    group = self.group,
                    partitions = partitions.count(),
                    "partitions assigned"
                );
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = self.group, %error, "rebalance error");
            }
        }
    }
}

fn lock(tracker: &Mutex<OffsetTracker>) -> MutexGuard<'_, OffsetTracker> {
    // The tracker holds plain data; a panic elsewhere leaves it usable.
    tracker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    positions: &[(String, i32, i64)],
    mode: CommitMode,
) -> rdkafka::error::KafkaResult<()> {
    if positions.is_empty() {
        return Ok(());
    }
    let mut list = TopicPartitionList::new();
    for (topic, partition, offset) in positions {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    consumer.commit(&list, mode)
}

/// Where a group with no committed offsets starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStart {
    Earliest,
    Latest,
}

impl GroupConsumer {
    /// Joins `group` and subscribes to `topics`. Offsets are never committed
    /// automatically.
    pub fn subscribe(
        config: &KafkaConfig,
        group: &str,
        topics: &[String],
        start: GroupStart,
    ) -> Result<Self, KafkaError> {
        // A cooperative rebalance takes some partitions away and leaves the
        // others: records already polled from the kept ones, and join
        // members waiting on them, would have to be rewound partition by
        // partition. Eager assignment revokes everything at once, and the
        // worker re-reads from what it committed, which loses nothing.
        if let Some(strategy) = config
            .properties
            .get("partition.assignment.strategy")
            .filter(|s| s.contains("cooperative"))
        {
            return Err(KafkaError::Unsupported {
                setting: format!("partition.assignment.strategy={strategy}"),
                reason: "cooperative rebalancing is not supported by enrichment workers: it \
                         revokes partitions one by one while records of the others wait in the \
                         join; use range or roundrobin (the default is range,roundrobin)"
                    .into(),
            });
        }
        let context = GroupContext {
            group: group.to_owned(),
            tracker: Mutex::default(),
            rebalanced: AtomicBool::new(false),
        };
        let mut client = config.client_config();
        client
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set(
                "auto.offset.reset",
                match start {
                    GroupStart::Earliest => "earliest",
                    GroupStart::Latest => "latest",
                },
            );
        // A worker killed without leaving should not hold its partitions
        // for long; the user's properties still take precedence.
        for (key, value) in [
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "1000"),
        ] {
            if !config.properties.contains_key(key) {
                client.set(key, value);
            }
        }
        let consumer: BaseConsumer<GroupContext> =
            client
                .create_with_context(context)
                .map_err(|source| KafkaError::Client {
                    brokers: config.bootstrap_servers.clone(),
                    source,
                })?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|source| KafkaError::Consume {
                group: group.to_owned(),
                topics: topics.join(", "),
                source: Box::new(source),
            })?;
        Ok(GroupConsumer {
            consumer,
            group: group.to_owned(),
            topics: topics.join(", "),
        })
    }

    /// Up to `max` records: waits at most `wait` for the first, then takes
    /// what is already there. Every record returned counts as unfinished
    /// until [`GroupConsumer::finished`] is called for it.
    pub fn poll(&mut self, max: usize, wait: Duration) -> Polled {
        let mut polled = Polled::default();
        let deadline = Instant::now() + wait;
        while polled.records.len() < max {
            let timeout = if polled.records.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let message = self.consumer.poll(timeout);
            if self.context().rebalanced.swap(false, Ordering::SeqCst) {
                // Records taken before the revocation belong to the old
                // assignment; their next owner reads them.
                polled.records.clear();
                polled.rebalanced = true;
            }
            match message {
                None => break,
                Some(Ok(message)) => polled.records.push(to_record(&message)),
                Some(Err(error)) => {
                    // librdkafka recovers from these by itself (a topic not
                    // yet created, a broker restarting); the stream goes on.
                    tracing::warn!(group = self.group, topics = self.topics, %error, "consumer error");
                    if polled.records.is_empty() && Instant::now() >= deadline {
                        break;
                    }
                }
            }
        }
        let mut tracker = lock(&self.context().tracker);
        for record in &polled.records {
            tracker.seen(&record.topic, record.partition, record.offset);
        }
        polled
    }

    pub fn finished<'a>(&self, records: impl IntoIterator<Item = &'a RecordRef>) {
        let mut tracker = lock(&self.context().tracker);
        for record in records {
            tracker.finished(record);
        }
    }

    /// Records received and not yet finished.
    pub fn unfinished(&self) -> usize {
        lock(&self.context().tracker).unfinished()
    }

    /// Commits every partition whose position moved; `Sync` waits for the
    /// broker's answer. Returns how many partitions were committed.
    pub fn commit(&self, mode: CommitMode) -> Result<usize, KafkaError> {
        let positions = lock(&self.context().tracker).take_commits();
        commit(&self.consumer, &positions, mode).map_err(|source| KafkaError::Commit {
            topic: self.topics.clone(),
            group: self.group.clone(),
            source: Box::new(source),
        })?;
        Ok(positions.len())
    }

    /// Per assigned partition: `(topic, partition, records past the
    /// group's committed offset)`, from the broker's watermarks and the
    /// group's commits; partitions the broker does not answer for in
    /// `timeout` are left out.
    pub fn lag(&self, timeout: Duration) -> Vec<(String, i32, i64)> {
        let Ok(assignment) = self.consumer.assignment() else {
            return Vec::new();
        };
        let Ok(committed) = self.consumer.committed_offsets(assignment, timeout) else {
            return Vec::new();
        };
        // Per topic, the watermarks of all its partitions in one request
        // each (earliest, latest): this runs inside the worker's loop, which
        // waited on two round trips per partition before.
        let mut by_topic: BTreeMap<String, Vec<(i32, Offset)>> = BTreeMap::new();
        for element in committed.elements() {
            by_topic
                .entry(element.topic().to_owned())
                .or_default()
                .push((element.partition(), element.offset()));
        }
        let mut lags = Vec::new();
        for (topic, positions) in by_topic {
            let partitions: Vec<i32> = positions.iter().map(|(p, _)| *p).collect();
            let Ok(marks) =
                super::metadata::all_watermarks(&self.consumer, timeout, &topic, &partitions)
            else {
                continue;
            };
            for (partition, offset) in positions {
                let Some(&(low, high)) = marks.get(&partition) else {
                    continue;
                };
                let position = match offset {
                    Offset::Offset(offset) => offset,
                    _ => low,
                };
                lags.push((topic.clone(), partition, high - position));
            }
        }
        lags
    }

    fn context(&self) -> &GroupContext {
        self.consumer.context()
    }
}
