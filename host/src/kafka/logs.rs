//! librdkafka's log lines and errors, into the structured log at levels
//! that mean what they say: the end of a partition, which bounded readers
//! ask librdkafka to report, is not an error; a broker going away is a
//! warning (librdkafka reconnects by itself); the rest keeps its level.

use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::oauth::{OAuthBearer, token_of};

/// The context every Sluice client is created with (but the group
/// consumer, whose context also tracks offsets): its logs, and its Entra
/// ID tokens when it has a credential.
#[derive(Debug, Clone, Default)]
pub struct Logged {
    pub(super) oauth: Option<OAuthBearer>,
}

impl ClientContext for Logged {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        token_of(self.oauth.as_ref())
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_line(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_error(&error, reason);
    }
}

impl ConsumerContext for Logged {}

pub(super) fn log_line(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

pub(super) fn log_error(error: &KafkaError, reason: &str) {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::PartitionEOF) => {
            tracing::debug!(target: "librdkafka", %error, reason, "end of partition")
        }
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::OperationTimedOut,
        ) => tracing::warn!(target: "librdkafka", %error, reason, "broker connection; retrying"),
        _ => tracing::error!(target: "librdkafka", %error, reason, "librdkafka error"),
    }
}
