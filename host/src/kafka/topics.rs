//! Creating topics, for generators, demos and tests.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::config::KafkaConfig;
use super::error::KafkaError;

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
