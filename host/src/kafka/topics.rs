//! Creating topics, for generators, demos and tests.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::config::KafkaConfig;
use super::error::KafkaError;

/// Kafka's rule for topic names: 1 to 249 of `a-z A-Z 0-9 . _ -`, and not
/// `.` or `..`. Checked before a name reaches the broker, so a request
/// naming something else is told so instead of getting a broker error.
pub fn check_topic_name(topic: &str) -> Result<(), KafkaError> {
    let valid = (1..=249).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && topic != "."
        && topic != "..";
    if valid {
        Ok(())
    } else {
        Err(KafkaError::BadTopicName {
            topic: topic.chars().take(80).collect(),
        })
    }
}

/// Creates `topic` with `partitions` partitions; an existing topic is fine.
pub fn ensure_topic(config: &KafkaConfig, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    let create_error = |reason: String| KafkaError::CreateTopic {
        topic: topic.to_owned(),
        reason,
    };
    let admin: AdminClient<DefaultClientContext> = config
        .client_config()
        .create()
        .map_err(|e| create_error(e.to_string()))?;
    // Both bounds: without the request timeout an unreachable broker makes
    // the call wait for librdkafka's default of a minute.
    let options = AdminOptions::new()
        .request_timeout(Some(config.request_timeout))
        .operation_timeout(Some(config.request_timeout));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
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
