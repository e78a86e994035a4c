//! A producer that waits for every delivery report, so a caller knows a
//! batch is durable before it moves on (and before it commits anything).
//!
//! Built on librdkafka's plain producer, not rust-rdkafka's `FutureProducer`,
//! for two costs a worker pays per record or per second:
//! - `FutureProducer` allocates a one-shot channel per record and wakes a
//!   future per acknowledgement; here a record is a sequence number and a
//!   batch is one counter under a lock, waited on with a condition variable.
//! - Its polling thread polls in windows of 100 ms, and rust-rdkafka's poll
//!   loop spins without blocking through the last sub-millisecond of every
//!   window (the remaining time rounds down to 0 ms): 1% of a core, busy or
//!   idle, which was 14% of a worker's CPU against the test broker. Here the
//!   window is [`POLL_WINDOW`]; acknowledgements still arrive as they come,
//!   since a poll returns each event as soon as it is there.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};

use super::config::KafkaConfig;
use super::convert::to_kafka_headers;
use super::error::KafkaError;
use super::logs::Logged;
use crate::record::Header;

/// How long the polling thread's every poll lasts: the spin at its end
/// costs a thousandth of it. A dropped producer's thread ends within one.
const POLL_WINDOW: Duration = Duration::from_secs(1);

/// A record bound for a named topic.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceRecord {
    pub topic: String,
    /// A fixed partition; `None` lets the key pick one.
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// Milliseconds since the Unix epoch; `None` lets the producer stamp
    /// the time it sends. Derived records keep their input's time, so a
    /// downstream event-time join sees when things happened.
    pub timestamp: Option<i64>,
}

pub struct Producer {
    inner: Arc<BaseProducer<Deliveries>>,
    /// Tells the polling thread to end (it holds its own handle on the
    /// client, which librdkafka destroys when the thread lets it go).
    stop: Arc<AtomicBool>,
    /// The next record's sequence number: its delivery report's tag.
    next: AtomicU64,
    /// The largest record the client sends (`message.max.bytes`).
    max_message_bytes: usize,
}

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;

/// Records sent whose acknowledgements are still to be collected.
#[derive(Default)]
pub struct InFlight {
    /// The distinct topics, so a record names its topic by index instead
    /// of holding a copy of the name.
    topics: Vec<String>,
    /// Per record sent, the index of its topic.
    topic_of: Vec<u32>,
    /// The batch's acknowledgements, counted as they come.
    batch: Option<Arc<Batch>>,
}

type RdKafkaError = rdkafka::error::KafkaError;

/// A record the producer did not deliver, and why.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Its index among the records given to [`Producer::send`].
    pub index: usize,
    pub error: RdKafkaError,
}

impl Refused {
    /// Whether sending the record again cannot help: the broker or the
    /// client refuses the record itself (too large, invalid, not allowed on
    /// its topic). The others (timeouts, a broker gone, a full queue) may
    /// pass later.
    pub fn is_permanent(&self) -> bool {
        use RDKafkaErrorCode as Code;
        matches!(
            self.error.rdkafka_error_code(),
            Some(
                Code::MessageSizeTooLarge
                    | Code::InvalidMessageSize
                    | Code::MessageBatchTooLarge
                    | Code::InvalidRecord
                    | Code::InvalidMessage
                    | Code::BadMessage
                    | Code::TopicAuthorizationFailed
                    | Code::InvalidTimestamp
            )
        )
    }
}

/// One `send`'s records: sequence numbers `first..first + len`.
struct Batch {
    first: u64,
    len: usize,
    state: Mutex<BatchState>,
    settled: Condvar,
}

#[derive(Default)]
struct BatchState {
    /// Records whose outcome is not known yet.
    pending: usize,
    refused: Vec<Refused>,
}

impl Batch {
    fn state(&self) -> MutexGuard<'_, BatchState> {
        // Plain counts: a panic elsewhere leaves them usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes the outcome of record `index`; whether the batch is settled.
    fn settle(&self, index: usize, outcome: Result<(), RdKafkaError>) -> bool {
        let mut state = self.state();
        if let Err(error) = outcome {
            state.refused.push(Refused { index, error });
        }
        state.pending = state.pending.saturating_sub(1);
        let settled = state.pending == 0;
        if settled {
            self.settled.notify_all();
        }
        settled
    }
}

/// The producer's context: librdkafka's logs and tokens as every client's
/// ([`Logged`]), and the batches waiting for acknowledgements, by their
/// first sequence number.
struct Deliveries {
    logged: Logged,
    waiting: Mutex<BTreeMap<u64, Arc<Batch>>>,
}

impl Deliveries {
    fn waiting(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Batch>>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes the outcome of the record with sequence number `seq`.
    fn settle(&self, seq: u64, outcome: Result<(), RdKafkaError>) {
        let batch = self
            .waiting()
            .range(..=seq)
            .next_back()
            .map(|(_, batch)| batch.clone())
            .filter(|batch| seq < batch.first + batch.len as u64);
        let Some(batch) = batch else {
            return;
        };
        let index = usize::try_from(seq - batch.first).unwrap_or(usize::MAX);
        if batch.settle(index, outcome) {
            self.waiting().remove(&batch.first);
        }
    }
}

impl ClientContext for Deliveries {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.logged.generate_oauth_token(oauthbearer_config)
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.logged.log(level, facility, message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        self.logged.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    /// The record's sequence number.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(error.clone()),
        };
        self.settle(seq as u64, outcome);
    }
}

impl InFlight {
    pub fn len(&self) -> usize {
        self.topic_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.topic_of.is_empty()
    }

    /// Waits for every acknowledgement; the first failure is returned,
    /// naming its topic.
    pub fn wait(self) -> Result<(), KafkaError> {
        let topics = self.topics.clone();
        let topic_of = self.topic_of.clone();
        match self.refused().into_iter().next() {
            None => Ok(()),
            Some(refused) => Err(KafkaError::Produce {
                topic: topic_of
                    .get(refused.index)
                    .and_then(|&t| topics.get(t as usize))
                    .cloned()
                    .unwrap_or_default(),
                source: refused.error,
            }),
        }
    }

    /// Waits for every acknowledgement; the records not delivered, in the
    /// order they were sent.
    pub fn refused(self) -> Vec<Refused> {
        let Some(batch) = self.batch else {
            return Vec::new();
        };
        let mut state = batch.state();
        while state.pending > 0 {
            state = batch
                .settled
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let mut refused = std::mem::take(&mut state.refused);
        refused.sort_by_key(|r| r.index);
        refused
    }
}

impl Producer {
    /// An idempotent producer: retries after a broker hiccup do not
    /// duplicate records.
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let context = Deliveries {
            logged: config.context(),
            waiting: Mutex::default(),
        };
        let inner: BaseProducer<Deliveries> = config
            .client_config()
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create_with_context(context)
            .map_err(|source| KafkaError::Client {
                brokers: config.bootstrap_servers.clone(),
                source,
            })?;
        let inner = Arc::new(inner);
        let stop = Arc::new(AtomicBool::new(false));
        let polled = (inner.clone(), stop.clone());
        std::thread::Builder::new()
            .name("sluice-producer".into())
            .spawn(move || {
                let (producer, stop) = polled;
                while !stop.load(Ordering::Relaxed) {
                    producer.poll(POLL_WINDOW);
                }
            })
            .map_err(|error| KafkaError::Client {
                brokers: config.bootstrap_servers.clone(),
                source: RdKafkaError::ClientCreation(format!(
                    "cannot start the producer's polling thread: {error}"
                )),
            })?;
        let max_message_bytes = config
            .properties
            .get("message.max.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        Ok(Producer {
            inner,
            stop,
            next: AtomicU64::new(0),
            max_message_bytes,
        })
    }

    /// The largest record this producer sends, key, value and headers
    /// together (`message.max.bytes`).
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Sends every record and waits until each is acknowledged. The first
    /// failure is returned, naming its topic.
    pub fn send_all(&self, records: &[ProduceRecord]) -> Result<(), KafkaError> {
        self.send(records)?.wait()
    }

    /// Hands every record to the producer and returns at once; the
    /// acknowledgements come in the background and [`InFlight::wait`] (or
    /// [`InFlight::refused`]) collects them, a record the producer refused
    /// at once included. A caller can prepare its next batch meanwhile, and
    /// must not count these records as done before then.
    pub fn send(&self, records: &[ProduceRecord]) -> Result<InFlight, KafkaError> {
        let mut in_flight = InFlight::default();
        if records.is_empty() {
            return Ok(in_flight);
        }
        let first = self.next.fetch_add(records.len() as u64, Ordering::Relaxed);
        let batch = Arc::new(Batch {
            first,
            len: records.len(),
            state: Mutex::new(BatchState {
                pending: records.len(),
                refused: Vec::new(),
            }),
            settled: Condvar::new(),
        });
        // Known before any of its records can be acknowledged.
        self.inner.context().waiting().insert(first, batch.clone());
        in_flight.topic_of.reserve(records.len());
        for (index, record) in records.iter().enumerate() {
            let topic = match in_flight.topics.iter().position(|t| *t == record.topic) {
                Some(index) => index,
                None => {
                    in_flight.topics.push(record.topic.clone());
                    in_flight.topics.len() - 1
                }
            };
            in_flight.topic_of.push(topic as u32);
            if let Err(refused_at_once) = self.enqueue(record, first + index as u64) {
                self.inner
                    .context()
                    .settle(first + index as u64, Err(refused_at_once));
            }
        }
        in_flight.batch = Some(batch);
        Ok(in_flight)
    }

    fn enqueue(&self, record: &ProduceRecord, seq: u64) -> Result<(), RdKafkaError> {
        let tag = usize::try_from(seq).unwrap_or(usize::MAX);
        let mut kafka_record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(&record.topic, tag)
            .headers(to_kafka_headers(&record.headers));
        if let Some(partition) = record.partition {
            kafka_record = kafka_record.partition(partition);
        }
        if let Some(key) = &record.key {
            kafka_record = kafka_record.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            kafka_record = kafka_record.payload(value.as_slice());
        }
        if let Some(timestamp) = record.timestamp {
            kafka_record = kafka_record.timestamp(timestamp);
        }
        loop {
            match self.inner.send(kafka_record) {
                Ok(()) => return Ok(()),
                // The local queue is full: let deliveries drain, then retry.
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    self.inner.poll(Duration::from_millis(50));
                    kafka_record = back;
                }
                Err((source, _)) => return Err(source),
            }
        }
    }
}

impl Drop for Producer {
    /// Ends the polling thread within one window; librdkafka's client goes
    /// with it (what was never acknowledged is purged and reported so).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
