//! Connected consumers kept between bounded reads. A new client spends most
//! of a small read connecting (TCP, TLS and SASL on a real cluster, metadata);
//! an HTTP fetch served many times a minute should pay that once.

use std::sync::{Condvar, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::logs::Logged;
use super::metadata::PartitionRange;

use super::config::KafkaConfig;
use super::consumer::bounded_consumer;
use super::error::KafkaError;
use super::read_plan::ReadPlan;
use super::reader::BoundedReader;

/// Idle consumers beyond this are closed: enough for a few requests at once.
const MAX_IDLE: usize = 4;

pub struct ReaderPool {
    config: KafkaConfig,
    group_id: String,
    idle: Mutex<Idle>,
    /// Signalled when a consumer is put back or a warm-up ends.
    changed: Condvar,
}

#[derive(Default)]
struct Idle {
    consumers: Vec<BaseConsumer<Logged>>,
    /// Warm-ups under way: a read waits for one rather than start its own
    /// connection from scratch, since the warm-up is further along.
    warming: usize,
}

impl ReaderPool {
    /// Reads through this pool belong to `group_id`, which is never
    /// committed to; plans must name it.
    pub fn new(config: KafkaConfig, group_id: impl Into<String>) -> Self {
        ReaderPool {
            config,
            group_id: group_id.into(),
            idle: Mutex::new(Idle::default()),
            changed: Condvar::new(),
        }
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// Connects one consumer to the cluster ahead of the first read (call it
    /// from a background thread at start-up).
    pub fn warm(&self) -> Result<(), KafkaError> {
        if let Ok(mut idle) = self.idle.lock() {
            idle.warming += 1;
        }
        let warmed = self.connect();
        if let Ok(mut idle) = self.idle.lock() {
            idle.warming -= 1;
        }
        match warmed {
            Ok(consumer) => self.put_back(consumer),
            Err(error) => {
                self.changed.notify_all();
                return Err(error);
            }
        }
        Ok(())
    }

    fn connect(&self) -> Result<BaseConsumer<Logged>, KafkaError> {
        let consumer = bounded_consumer(&self.config, &self.group_id)?;
        // One topic's metadata connects as well as every topic's, which on
        // a cluster with thousands of topics takes far longer. This one
        // exists on Kafka; where it does not, the answer says so quickly
        // (consumers never create topics by asking).
        consumer
            .fetch_metadata(Some("__consumer_offsets"), self.config.request_timeout)
            .map_err(|source| KafkaError::Client {
                brokers: self.config.bootstrap_servers.clone(),
                source,
            })?;
        Ok(consumer)
    }

    /// Runs `read` on a reader of `plan`'s ranges. The consumer goes back to
    /// the pool unless reading failed (its state is then unknown).
    pub fn read<T>(
        &self,
        plan: &ReadPlan,
        read: impl FnOnce(&mut BoundedReader) -> Result<T, KafkaError>,
    ) -> Result<T, KafkaError> {
        self.read_with(plan, Ok, read)
    }

    /// As [`ReaderPool::read`], on the ranges `plan` resolves to as
    /// `adjust` changes them (a search reads a window of each partition,
    /// or what a cursor left; each range's watermarks are in it).
    pub fn read_with<T, E: From<KafkaError>>(
        &self,
        plan: &ReadPlan,
        adjust: impl FnOnce(Vec<PartitionRange>) -> Result<Vec<PartitionRange>, E>,
        read: impl FnOnce(&mut BoundedReader) -> Result<T, E>,
    ) -> Result<T, E> {
        debug_assert_eq!(plan.group_id, self.group_id, "a plan of another group");
        let consumer = match self.take() {
            Some(consumer) => {
                // A token that expired while it waited is replaced first
                // (it is unassigned: a poll returns no record).
                super::oauth::serve_token_request(&consumer, self.config.oauth.is_some());
                consumer
            }
            None => bounded_consumer(&self.config, &self.group_id)?,
        };
        let ranges = match plan.ranges(&consumer, &self.config) {
            Ok(ranges) => adjust(ranges),
            Err(error) => Err(error.into()),
        };
        let ranges = match ranges {
            Ok(ranges) => ranges,
            Err(error) => {
                // An unknown topic or an offset out of range says nothing
                // bad about the consumer.
                self.put_back(consumer);
                return Err(error);
            }
        };
        let mut reader = BoundedReader::assigned(consumer, ranges, plan)?;
        match read(&mut reader) {
            Ok(value) => {
                match reader.into_consumer() {
                    Ok(consumer) => self.put_back(consumer),
                    Err(error) => tracing::warn!(%error, "a pooled consumer is closed"),
                }
                Ok(value)
            }
            Err(error) => {
                close_in_background(reader);
                Err(error)
            }
        }
    }

    /// Runs `ask` (metadata, watermarks: nothing assigned) on a pooled
    /// consumer, so a question about the cluster pays no new connection.
    pub(super) fn ask<T>(
        &self,
        ask: impl FnOnce(&BaseConsumer<Logged>) -> Result<T, KafkaError>,
    ) -> Result<T, KafkaError> {
        let consumer = match self.take() {
            Some(consumer) => {
                super::oauth::serve_token_request(&consumer, self.config.oauth.is_some());
                consumer
            }
            None => bounded_consumer(&self.config, &self.group_id)?,
        };
        let answer = ask(&consumer);
        self.put_back(consumer);
        answer
    }

    /// Consumers waiting for the next read.
    pub fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.consumers.len())
    }

    /// An idle consumer, waiting for a warm-up under way (at most the
    /// request timeout); `None` when there is neither.
    fn take(&self) -> Option<BaseConsumer<Logged>> {
        let idle = self.idle.lock().ok()?;
        let (mut idle, _) = self
            .changed
            .wait_timeout_while(idle, self.config.request_timeout, |idle| {
                idle.consumers.is_empty() && idle.warming > 0
            })
            .ok()?;
        idle.consumers.pop()
    }

    fn put_back(&self, consumer: BaseConsumer<Logged>) {
        match self.idle.lock() {
            Ok(mut idle) if idle.consumers.len() < MAX_IDLE => {
                idle.consumers.push(consumer);
                self.changed.notify_one();
            }
            _ => close_in_background(consumer),
        }
    }
}

impl Drop for ReaderPool {
    fn drop(&mut self) {
        if let Ok(idle) = self.idle.get_mut() {
            for consumer in idle.consumers.drain(..) {
                close_in_background(consumer);
            }
        }
    }
}

/// Closing a consumer waits for its fetch in flight and its broker threads
/// (tens of milliseconds); nobody needs to wait for that.
fn close_in_background<T: Send + 'static>(client: T) {
    std::thread::spawn(move || drop(client));
}
