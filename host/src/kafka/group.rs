//! A consumer-group member that commits only finished records: the caller
//! reports each record finished (produced and acknowledged, dead-lettered or
//! dropped) and the commit position of a partition never passes an
//! unfinished one. When the group takes partitions away, what is finished is
//! committed first and the rest is left for the next owner to read again.
//!
//! What a revoke takes depends on the group's effective protocol, read from
//! the client when it happens: eager (the classic protocol with `range` or
//! `roundrobin`) takes the whole assignment and the new one starts from the
//! committed offsets; cooperative (`cooperative-sticky`, or
//! `group.protocol=consumer`) takes only the partitions listed, and the kept
//! ones go on from where they were, so their records in memory are kept too.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::config::KafkaConfig;
use super::convert::to_record;
use super::error::KafkaError;
use super::progress::{Forgotten, OffsetTracker};
use crate::record::{KafkaRecord, RecordRef};

/// Records received by one poll, and the partitions whose records the
/// caller must forget when the group reassigned partitions since the last
/// one (they will be read again from the committed or rewound positions).
#[derive(Debug, Default)]
pub struct Polled {
    pub records: Vec<KafkaRecord>,
    pub forgotten: Option<Forgotten>,
}

pub struct GroupConsumer {
    consumer: BaseConsumer<GroupContext>,
    group: String,
    topics: String,
    /// Whether a rebalance also rewinds the kept partitions that have
    /// unfinished records (see [`GroupConsumer::rewind_on_rebalance`]).
    rewinds: bool,
}

struct GroupContext {
    group: String,
    tracker: Mutex<OffsetTracker>,
    /// What rebalances changed since `poll` last looked.
    changes: Mutex<Option<Forgotten>>,
    /// Entra ID tokens, when the cluster takes them.
    oauth: Option<super::OAuthBearer>,
}

impl GroupContext {
    /// Notes a rebalance that took `revoked` (nothing, for an assignment).
    fn note(&self, revoked: Forgotten) {
        let mut changes = self
            .changes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        changes
            .get_or_insert_with(Forgotten::default)
            .merge(revoked);
    }

    fn take_changes(&self) -> Option<Forgotten> {
        self.changes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

/// The partitions a revoke takes under `protocol`: the whole assignment
/// when it is eager (whatever `listed` holds; the new assignment starts
/// from the committed offsets), the ones listed otherwise (cooperative, or
/// not known yet: the kept partitions go on from where they were).
fn revoked_by(protocol: &RebalanceProtocol, listed: &TopicPartitionList) -> Forgotten {
    match protocol {
        RebalanceProtocol::Eager => Forgotten::All,
        RebalanceProtocol::Cooperative | RebalanceProtocol::None => {
            Forgotten::partitions(listed.elements().iter().map(|e| (e.topic(), e.partition())))
        }
    }
}

fn protocol_name(protocol: &RebalanceProtocol) -> &'static str {
    match protocol {
        RebalanceProtocol::Eager => "eager",
        RebalanceProtocol::Cooperative => "cooperative",
        RebalanceProtocol::None => "none",
    }
}

/// The records of `polled` whose partitions are not `forgotten`, in order.
fn retain_owned(polled: &mut Vec<KafkaRecord>, forgotten: &Forgotten) {
    polled.retain(|r| !forgotten.contains(&r.topic, r.partition));
}

impl ClientContext for GroupContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        super::oauth::token_of(self.oauth.as_ref())
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::logs::log_line(level, facility, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        super::logs::log_error(&error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let protocol = consumer.rebalance_protocol();
        match rebalance {
            Rebalance::Revoke(partitions) => {
                let revoked = revoked_by(&protocol, partitions);
                let mut tracker = lock(&self.tracker);
                let commits = tracker.take_commits();
                if let Err(error) = commit(consumer, &commits, CommitMode::Sync) {
                    tracing::warn!(
                        group = self.group,
                        %error,
                        "committing before giving partitions up failed; the next owner re-reads them"
                    );
                }
                tracker.forget(&revoked);
                self.note(revoked);
                tracing::info!(
                    group = self.group,
                    partitions = partitions.count(),
                    protocol = protocol_name(&protocol),
                    "partitions revoked"
                );
            }
            Rebalance::Assign(partitions) => {
                self.note(Forgotten::default());
                tracing::info!(
                    group = self.group,
                    partitions = partitions.count(),
                    protocol = protocol_name(&protocol),
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
        let context = GroupContext {
            group: group.to_owned(),
            tracker: Mutex::default(),
            changes: Mutex::default(),
            oauth: config.oauth.clone(),
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
        // for long; the user's properties still take precedence. Under
        // `group.protocol=consumer` the broker sets both (the client
        // refuses them).
        let classic =
            config.properties.get("group.protocol").map(String::as_str) != Some("consumer");
        for (key, value) in [
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "1000"),
        ] {
            if classic && !config.properties.contains_key(key) {
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
            rewinds: false,
        })
    }

    /// Makes every rebalance also rewind the partitions kept that have
    /// unfinished records, to their lowest unfinished offset, and report
    /// them forgotten with the revoked ones: for a caller whose records
    /// must be read again together (a join's members, judged by an event
    /// time shared by every partition of an input). Under the eager
    /// protocol nothing is kept and this changes nothing; under the
    /// cooperative one it makes a rebalance look to the caller as an eager
    /// one does: everything it held read again, nothing lost.
    pub fn rewind_on_rebalance(&mut self) {
        self.rewinds = true;
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
            if let Some(mut forgotten) = self.context().take_changes() {
                if self.rewinds {
                    forgotten.merge(self.rewind());
                }
                if !forgotten.is_empty() {
                    // Records polled before the rebalance belong to the old
                    // assignment (their next owner reads them) or come
                    // again after the rewind; so does the one polled with
                    // it, fetched before the seek. Later ones are read
                    // from the rewound position.
                    retain_owned(&mut polled.records, &forgotten);
                    let again = matches!(&message,
                        Some(Ok(m)) if forgotten.contains(m.topic(), m.partition()));
                    polled
                        .forgotten
                        .get_or_insert_with(Forgotten::default)
                        .merge(forgotten);
                    if again {
                        continue;
                    }
                }
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

    /// Seeks every partition with unfinished records back to its lowest
    /// unfinished offset and stops tracking it; the partitions rewound. A
    /// partition the seek fails for keeps its records where they are
    /// (nothing is read twice, nothing skipped).
    fn rewind(&self) -> Forgotten {
        let mut tracker = lock(&self.context().tracker);
        let mut rewound = Forgotten::default();
        for (topic, partition, offset) in tracker.rewind_positions() {
            match self.consumer.seek(
                &topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(5),
            ) {
                Ok(()) => rewound.add(&topic, partition),
                Err(error) => tracing::warn!(
                    group = self.group,
                    topic,
                    partition,
                    offset,
                    %error,
                    "rewinding a kept partition failed; its records stay where they are"
                ),
            }
        }
        tracker.forget(&rewound);
        if !rewound.is_empty() {
            tracing::info!(group = self.group, ?rewound, "kept partitions rewound");
        }
        rewound
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

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(partitions: &[(&str, i32)]) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in partitions {
            list.add_partition(topic, *partition);
        }
        list
    }

    #[test]
    fn an_eager_revoke_takes_everything_a_cooperative_one_what_it_lists() {
        let list = listed(&[("a", 1), ("b", 0)]);
        assert_eq!(revoked_by(&RebalanceProtocol::Eager, &list), Forgotten::All);
        let cooperative = revoked_by(&RebalanceProtocol::Cooperative, &list);
        assert_eq!(cooperative, Forgotten::partitions([("a", 1), ("b", 0)]));
        assert!(
            !cooperative.contains("a", 0),
            "a kept partition is not taken"
        );
        assert_eq!(
            revoked_by(&RebalanceProtocol::None, &list),
            cooperative,
            "a protocol not known yet takes what is listed, never more"
        );
    }

    /// The client refuses `session.timeout.ms` and `heartbeat.interval.ms`
    /// under the new consumer protocol; the worker's own defaults for them
    /// must not stop it from starting.
    #[test]
    fn a_consumer_on_the_new_group_protocol_starts() {
        let config = KafkaConfig::new("127.0.0.1:1").with("group.protocol", "consumer");
        let topics = ["t".to_owned()];
        if let Err(error) = GroupConsumer::subscribe(&config, "g", &topics, GroupStart::Earliest) {
            panic!("{error}");
        }
    }

    #[test]
    fn records_polled_from_partitions_kept_stay_in_order() {
        let record = |topic: &str, partition: i32, offset: i64| KafkaRecord {
            partition,
            offset,
            ..KafkaRecord::from_value(topic, offset, b"{}".to_vec())
        };
        let mut polled = vec![
            record("a", 0, 5),
            record("a", 1, 7),
            record("b", 0, 2),
            record("a", 0, 6),
        ];
        retain_owned(&mut polled, &Forgotten::partitions([("a", 1)]));
        let left: Vec<(&str, i32, i64)> = polled
            .iter()
            .map(|r| (r.topic.as_str(), r.partition, r.offset))
            .collect();
        assert_eq!(left, [("a", 0, 5), ("b", 0, 2), ("a", 0, 6)]);
        retain_owned(&mut polled, &Forgotten::All);
        assert!(polled.is_empty());
    }
}
