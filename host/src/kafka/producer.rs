//! A producer that waits for every delivery report, so a caller knows a
//! batch is durable before it moves on (and before it commits anything).

use std::time::Duration;

use futures_util::future::join_all;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::config::KafkaConfig;
use super::convert::to_kafka_headers;
use super::error::KafkaError;
use super::logs::Logged;
use crate::record::Header;

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
    inner: FutureProducer<Logged>,
    /// The largest record the client sends (`message.max.bytes`).
    max_message_bytes: usize,
}

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;

/// Records sent whose acknowledgements are still to be collected.
#[derive(Default)]
pub struct InFlight {
    /// The distinct topics, so a delivery names its topic by index instead
    /// of holding a copy of the name per record.
    topics: Vec<String>,
    /// Per record sent, its topic and its delivery, or why the producer
    /// refused it at once (too large for `message.max.bytes`, say).
    deliveries: Vec<(
        usize,
        Result<rdkafka::producer::DeliveryFuture, RdKafkaError>,
    )>,
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

impl InFlight {
    pub fn len(&self) -> usize {
        self.deliveries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
    }

    /// Waits for every acknowledgement; the first failure is returned,
    /// naming its topic.
    pub fn wait(self) -> Result<(), KafkaError> {
        let topics = self.topics.clone();
        match self.refused().into_iter().next() {
            None => Ok(()),
            Some(refused) => Err(KafkaError::Produce {
                topic: topics.get(refused.index).cloned().unwrap_or_default(),
                source: refused.error,
            }),
        }
    }

    /// Waits for every acknowledgement; the records not delivered, in the
    /// order they were sent.
    pub fn refused(self) -> Vec<Refused> {
        let InFlight { deliveries, .. } = self;
        let results = futures_executor::block_on(join_all(deliveries.into_iter().enumerate().map(
            |(index, (_, delivery))| async move {
                let error = match delivery {
                    Err(refused_at_once) => refused_at_once,
                    Ok(future) => match future.await {
                        Ok(Ok(_)) => return None,
                        Ok(Err((error, _))) => error,
                        Err(_cancelled) => RdKafkaError::Canceled,
                    },
                };
                Some(Refused { index, error })
            },
        )));
        results.into_iter().flatten().collect()
    }
}

impl Producer {
    /// An idempotent producer: retries after a broker hiccup do not
    /// duplicate records.
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let inner = config
            .client_config()
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create_with_context(config.context())
            .map_err(|source| KafkaError::Client {
                brokers: config.bootstrap_servers.clone(),
                source,
            })?;
        let max_message_bytes = config
            .properties
            .get("message.max.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        Ok(Producer {
            inner,
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
        for record in records {
            let topic = match in_flight.topics.iter().position(|t| *t == record.topic) {
                Some(index) => index,
                None => {
                    in_flight.topics.push(record.topic.clone());
                    in_flight.topics.len() - 1
                }
            };
            in_flight.deliveries.push((topic, self.enqueue(record)));
        }
        Ok(in_flight)
    }

    fn enqueue(
        &self,
        record: &ProduceRecord,
    ) -> Result<rdkafka::producer::DeliveryFuture, RdKafkaError> {
        let mut kafka_record = FutureRecord::<[u8], [u8]>::to(&record.topic)
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
            match self.inner.send_result(kafka_record) {
                Ok(delivery) => return Ok(delivery),
                // The local queue is full: let deliveries drain, then retry.
                Err((
                    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    self.inner.poll(Duration::from_millis(50));
                    kafka_record = back;
                }
                Err((source, _)) => return Err(source),
            }
        }
    }
}
