//! The consumer bounded reads use (the export's reader, the fetch's pool,
//! metadata and topic checks): the settings that make a read end, in a
//! module of their own so that none of those users depends on another.

use rdkafka::consumer::BaseConsumer;

use super::config::KafkaConfig;
use super::error::KafkaError;
use super::logs::Logged;

/// A consumer for bounded reads by `group_id`: no automatic commits, the
/// end of each partition reported.
pub(super) fn bounded_consumer(
    config: &KafkaConfig,
    group_id: &str,
) -> Result<BaseConsumer<Logged>, KafkaError> {
    let consumer: BaseConsumer<Logged> = config
        .client_config()
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // The end of a partition ends its range even when the offsets
        // just below the high watermark are gone (compaction,
        // transaction markers) and no record reaches the end.
        .set("enable.partition.eof", "true")
        // A bounded read wants the partition's end reported at once, not
        // after the broker's default half-second wait for more records;
        // and tansu holds even a fetch that found records this long.
        .set("fetch.wait.max.ms", "1")
        // Connect to every broker as soon as metadata names them, not when
        // a request first needs one: librdkafka spaces such connections
        // at least 11 ms apart, which a small read would spend waiting.
        .set("enable.sparse.connections", "false")
        .create_with_context(config.context())
        .map_err(|source| KafkaError::Client {
            brokers: config.bootstrap_servers.clone(),
            source,
        })?;
    // Its first token, before its first metadata request.
    super::oauth::serve_token_request(&consumer, config.oauth.is_some());
    Ok(consumer)
}
