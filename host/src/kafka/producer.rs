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
}

/// Records sent whose acknowledgements are still to be collected.
#[derive(Default)]
pub struct InFlight {
    /// The distinct topics, so a delivery names its topic by index instead
    /// of holding a copy of the name per record.
    topics: Vec<String>,
    deliveries: Vec<(usize, rdkafka::producer::DeliveryFuture)>,
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
        let InFlight { topics, deliveries } = self;
        let results = futures_executor::block_on(join_all(
            deliveries
                .into_iter()
                .map(|(topic, future)| async move { (topic, future.await) }),
        ));
        for (topic, result) in results {
            let error = match result {
                Ok(Ok(_)) => continue,
                Ok(Err((source, _))) => source,
                Err(_cancelled) => rdkafka::error::KafkaError::Canceled,
            };
            return Err(KafkaError::Produce {
                topic: topics.get(topic).cloned().unwrap_or_default(),
                source: error,
            });
        }
        Ok(())
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
            .create_with_context(Logged)
            .map_err(|source| KafkaError::Client {
                brokers: config.bootstrap_servers.clone(),
                source,
            })?;
        Ok(Producer { inner })
    }

    /// Sends every record and waits until each is acknowledged. The first
    /// failure is returned, naming its topic.
    pub fn send_all(&self, records: &[ProduceRecord]) -> Result<(), KafkaError> {
        self.send(records)?.wait()
    }

    /// Hands every record to the producer and returns at once; the
    /// acknowledgements come in the background and [`InFlight::wait`]
    /// collects them. A caller can prepare its next batch meanwhile, and
    /// must not count these records as done before `wait` says so.
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
            in_flight.deliveries.push((topic, self.enqueue(record)?));
        }
        Ok(in_flight)
    }

    fn enqueue(
        &self,
        record: &ProduceRecord,
    ) -> Result<rdkafka::producer::DeliveryFuture, KafkaError> {
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
                Err((source, _)) => {
                    return Err(KafkaError::Produce {
                        topic: record.topic.clone(),
                        source,
                    });
                }
            }
        }
    }
}
