//! The limit the end-to-end bench holds `sluice enrich` to: a bare
//! consume -> produce pipe on rust-rdkafka, as little as a Rust worker can
//! do with the same guarantees. It joins a consumer group (Sluice's group
//! settings), polls up to 500 records (200 ms for the first, then what is
//! there), produces each to the output topic with its key, value, time and
//! headers (and, with `headers=1`, the two Sluice writes: its stamp and a
//! `traceparent` of the same sizes), waits for the batch's
//! acknowledgements, then commits asynchronously: at least once, as Sluice.
//! Its producer is polled on a thread of its own in one-second windows (not
//! rust-rdkafka's `ThreadedProducer`, whose 100 ms windows spin through
//! their last millisecond: the limit is the client's cost, not that).
//!
//! `rdkafka_pipe brokers=B input=T output=T group=G count=N headers=0|1`:
//! ends once `count` records are acknowledged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::{ClientContext, Timestamp};

const STEP: usize = 500;
const STAMP: &str = "stay-category@0123456789ab";
const TRACEPARENT: &str = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01";

/// Counts acknowledgements; the main loop waits on it.
#[derive(Default)]
struct Acks {
    done: Mutex<u64>,
    changed: Condvar,
    failed: AtomicBool,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            eprintln!("rdkafka_pipe: delivery failed: {error}");
            self.failed.store(true, Ordering::SeqCst);
        }
        let mut done = self.done.lock().expect("lock");
        *done += 1;
        self.changed.notify_all();
    }
}

fn main() {
    let args: HashMap<String, String> = std::env::args()
        .skip(1)
        .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let arg = |key: &str| {
        args.get(key)
            .unwrap_or_else(|| panic!("rdkafka_pipe needs {key}="))
            .as_str()
    };
    let count: u64 = arg("count").parse().expect("count=N");
    let with_headers = arg("headers") == "1";
    let output = arg("output");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", arg("brokers"))
        .set("group.id", arg("group"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[arg("input")]).expect("subscribe");
    let producer: Arc<BaseProducer<Acks>> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", arg("brokers"))
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create_with_context(Acks::default())
            .expect("producer"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (producer, stop) = (producer.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                producer.poll(Duration::from_secs(1));
            }
        })
    };

    let mut sent = 0u64;
    while sent < count {
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut polled = 0;
        while polled < STEP {
            let wait = if polled == 0 {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let Some(message) = consumer.poll(wait) else {
                break;
            };
            let message = message.expect("consume");
            let mut headers = OwnedHeaders::new_with_capacity(4);
            if let Some(input) = message.headers() {
                for header in input.iter() {
                    headers = headers.insert(header);
                }
            }
            if with_headers {
                for (key, value) in [("sluice.transform", STAMP), ("traceparent", TRACEPARENT)] {
                    headers = headers.insert(Header {
                        key,
                        value: Some(value),
                    });
                }
            }
            let mut record = BaseRecord::<[u8], [u8]>::to(output).headers(headers);
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(value) = message.payload() {
                record = record.payload(value);
            }
            if let Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) = message.timestamp() {
                record = record.timestamp(ms);
            }
            while let Err((error, back)) = producer.send(record) {
                assert!(
                    matches!(
                        error.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ),
                    "produce: {error}"
                );
                producer.poll(Duration::from_millis(50));
                record = back;
            }
            polled += 1;
        }
        if polled == 0 {
            continue;
        }
        sent += polled as u64;
        let target = sent;
        let acks = producer.context();
        let mut done = acks.done.lock().expect("lock");
        while *done < target {
            done = acks.changed.wait(done).expect("lock");
        }
        drop(done);
        assert!(!acks.failed.load(Ordering::SeqCst), "a delivery failed");
        if let Err(error) = consumer.commit_consumer_state(CommitMode::Async) {
            eprintln!("rdkafka_pipe: commit failed, retried by the next one: {error}");
        }
    }
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
    stop.store(true, Ordering::Relaxed);
    poller.join().expect("poller");
    println!("rdkafka_pipe: {sent} records");
}
