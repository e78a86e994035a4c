//! Generated records into a topic: batches acknowledged one at a time,
//! optionally paced to an average rate.

use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::{debug, info};

use super::{ClickstreamGenerator, ExpediaGenerator};
use crate::kafka::{KafkaConfig, KafkaError, ProduceRecord, Producer};

/// What to generate; each kind knows the field its records are keyed by.
pub enum Generator {
    /// Hotel booking searches (the expedia data set), keyed by `id`.
    Expedia(ExpediaGenerator),
    /// Web click events (the clickstream pipeline's), keyed by `user_id`.
    Clickstream(ClickstreamGenerator),
}

impl Generator {
    /// The top-level field whose value (as JSON) is each record's key.
    pub fn key_field(&self) -> &'static str {
        match self {
            Generator::Expedia(_) => "id",
            Generator::Clickstream(_) => "user_id",
        }
    }

    fn next_value(&mut self) -> Value {
        match self {
            Generator::Expedia(g) => g.next_record(),
            Generator::Clickstream(g) => g.next_event(),
        }
    }
}

/// How fast and in what batches to produce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Records per second on average; `None` is as fast as the broker takes
    /// them.
    pub rate: Option<f64>,
    /// The most records sent (and acknowledged) together.
    pub max_batch: usize,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            rate: None,
            max_batch: 5_000,
        }
    }
}

impl Pacing {
    /// Records per send: `max_batch`, or about a tenth of a second's worth
    /// when paced, so a slow rate trickles out instead of arriving in bursts.
    pub fn batch(&self) -> usize {
        let max = self.max_batch.max(1);
        match self.rate {
            Some(rate) if rate.is_finite() && rate > 0.0 => {
                ((rate / 10.0).ceil() as usize).clamp(1, max)
            }
            _ => max,
        }
    }
}

/// When, counted from the start, the first `sent` records may have been
/// sent at `rate` records per second: never ahead of `rate` at any moment.
/// A rate that is not a positive number means no limit.
pub fn due(sent: u64, rate: f64) -> Duration {
    if !(rate.is_finite() && rate > 0.0) {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(sent as f64 / rate).unwrap_or(Duration::MAX)
}

/// How many records more than `sent` are due after `elapsed` at `rate`.
fn behind(elapsed: Duration, sent: u64, rate: f64) -> u64 {
    if !(rate.is_finite() && rate > 0.0) {
        return 0;
    }
    ((elapsed.as_secs_f64() * rate) as u64).saturating_sub(sent)
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("producing generated records {from}.. to `{topic}`: {source}")]
    Produce {
        topic: String,
        from: u64,
        source: Box<KafkaError>,
    },
    #[error(transparent)]
    Kafka(Box<KafkaError>),
    #[error("rate must be a positive number of records per second, not {0}")]
    BadRate(f64),
}

/// Produces `count` generated records to `topic` (which must exist), each
/// batch acknowledged before the next, paced by `pacing`; `on_progress`
/// gets the number of records acknowledged so far after every batch.
pub fn produce_generated(
    config: &KafkaConfig,
    topic: &str,
    count: u64,
    pacing: Pacing,
    mut generator: Generator,
    mut on_progress: impl FnMut(u64),
) -> Result<(), GenerateError> {
    if let Some(rate) = pacing.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(GenerateError::BadRate(rate));
    }
    let producer = Producer::new(config).map_err(|e| GenerateError::Kafka(Box::new(e)))?;
    let key_field = generator.key_field();
    let batch_size = pacing.batch() as u64;
    info!(topic, count, rate = ?pacing.rate, batch_size, "producing generated records");
    let started = Instant::now();
    let mut sent = 0;
    while sent < count {
        // Behind schedule (a slow acknowledgement), send what is owed at
        // once, so the average still reaches the rate.
        let owed = pacing
            .rate
            .map_or(0, |rate| behind(started.elapsed(), sent, rate))
            .min(pacing.max_batch.max(1) as u64);
        let n = (count - sent).min(batch_size.max(owed));
        let batch: Vec<ProduceRecord> = (0..n)
            .map(|_| {
                let value = generator.next_value();
                ProduceRecord {
                    timestamp: None,
                    topic: topic.to_owned(),
                    partition: None,
                    key: Some(value[key_field].to_string().into_bytes()),
                    value: Some(value.to_string().into_bytes()),
                    headers: Vec::new(),
                }
            })
            .collect();
        if let Some(rate) = pacing.rate {
            let wait = due(sent + n, rate).saturating_sub(started.elapsed());
            if !wait.is_zero() {
                debug!(topic, sent, ?wait, "pacing");
                std::thread::sleep(wait);
            }
        }
        producer
            .send_all(&batch)
            .map_err(|source| GenerateError::Produce {
                topic: topic.to_owned(),
                from: sent,
                source: Box::new(source),
            })?;
        sent += n;
        on_progress(sent);
    }
    info!(topic, count, elapsed = ?started.elapsed(), "generated records produced");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_spreads_records_evenly_over_time() {
        assert_eq!(due(0, 200.0), Duration::ZERO);
        assert_eq!(due(200, 200.0), Duration::from_secs(1));
        assert_eq!(due(300, 200.0), Duration::from_millis(1500));
        assert_eq!(due(1, 4.0), Duration::from_millis(250));
        assert_eq!(due(10, 0.5), Duration::from_secs(20));
    }

    #[test]
    fn no_rate_means_no_wait() {
        assert_eq!(due(1_000_000, 0.0), Duration::ZERO);
        assert_eq!(due(1_000_000, -3.0), Duration::ZERO);
        assert_eq!(due(1_000_000, f64::NAN), Duration::ZERO);
        assert_eq!(due(1_000_000, f64::INFINITY), Duration::ZERO);
    }

    #[test]
    fn a_late_sender_owes_what_is_due() {
        assert_eq!(behind(Duration::from_secs(1), 150, 200.0), 50);
        assert_eq!(behind(Duration::from_secs(1), 250, 200.0), 0);
        assert_eq!(behind(Duration::from_secs(1), 0, 0.0), 0);
    }

    #[test]
    fn paced_batches_are_a_tenth_of_a_second() {
        let paced = |rate| Pacing {
            rate: Some(rate),
            max_batch: 1_000,
        };
        assert_eq!(paced(200.0).batch(), 20);
        assert_eq!(paced(5.0).batch(), 1);
        assert_eq!(paced(0.1).batch(), 1);
        assert_eq!(paced(1e9).batch(), 1_000);
        assert_eq!(Pacing::default().batch(), 5_000);
        let zero = Pacing {
            rate: None,
            max_batch: 0,
        };
        assert_eq!(zero.batch(), 1);
    }
}
