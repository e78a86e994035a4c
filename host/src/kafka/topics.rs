//! Topics: checking that those a worker writes exist, creating them when
//! asked, and Kafka's naming rule.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use super::config::KafkaConfig;
use super::error::KafkaError;
use super::logs::Logged;

/// Creates `topic` with `partitions` partitions and one replica; an
/// existing topic is fine. For generators, demos and tests on one broker:
/// production topics are created by [`create_topic`] with the cluster's
/// replication, or beforehand by whoever runs the cluster.
pub fn ensure_topic(config: &KafkaConfig, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    create_topic(config, topic, partitions, 1)
}

/// Checks that every topic in `topics` exists, naming the first that does
/// not. A worker checks what it writes before it reads anything, so a
/// missing output is found at start, not at the first record.
pub fn require_topics<'a>(
    config: &KafkaConfig,
    topics: impl IntoIterator<Item = &'a str>,
) -> Result<(), KafkaError> {
    // A consumer's metadata request never creates a topic, whatever the
    // broker's auto.create.topics.enable says.
    let consumer = super::consumer::bounded_consumer(config, "sluice-topic-check")?;
    for topic in topics {
        match super::metadata::partitions(&consumer, config, topic) {
            Ok(_) => {}
            Err(KafkaError::UnknownTopic { topic, brokers }) => {
                return Err(KafkaError::MissingTopic { topic, brokers });
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// Creates `topic` with `partitions` partitions and `replication` replicas
/// (`-1`: the broker's `default.replication.factor`); an existing topic is
/// fine.
pub fn create_topic(
    config: &KafkaConfig,
    topic: &str,
    partitions: i32,
    replication: i32,
) -> Result<(), KafkaError> {
    super::metadata::check_topic_name(topic)?;
    let create_error = |reason: String| KafkaError::CreateTopic {
        topic: topic.to_owned(),
        reason,
    };
    let admin: AdminClient<Logged> = config
        .client_config()
        .create_with_context(config.context())
        .map_err(|e| create_error(e.to_string()))?;
    // Both bounds: without the request timeout an unreachable broker makes
    // the call wait for librdkafka's default of a minute.
    let options = AdminOptions::new()
        .request_timeout(Some(config.request_timeout))
        .operation_timeout(Some(config.request_timeout));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let results = futures_executor::block_on(admin.create_topics([&new_topic], &options))
        .map_err(|e| create_error(e.to_string()))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(create_error(code.to_string())),
        }
    }
    Ok(())
}
