//! Where the brokers are and how to talk to them.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;

use super::logs::Logged;
use super::oauth::OAuthBearer;

/// Connection settings shared by readers, producers and admin calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// Any other librdkafka property (`security.protocol`, `sasl.*`, ...),
    /// passed through as is.
    pub properties: BTreeMap<String, String>,
    /// How long a metadata or watermark request may take.
    pub request_timeout: Duration,
    /// Entra ID tokens for SASL OAUTHBEARER (Event Hubs without a
    /// connection string).
    pub oauth: Option<OAuthBearer>,
}

impl KafkaConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            properties: BTreeMap::new(),
            request_timeout: Duration::from_secs(10),
            oauth: None,
        }
    }

    /// `$SLUICE_KAFKA_BROKERS`, else the local broker that
    /// `scripts/services.sh up` starts.
    pub fn from_env() -> Self {
        KafkaConfig::new(
            std::env::var("SLUICE_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        )
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.properties.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Signs in with Entra ID tokens: SASL_SSL and OAUTHBEARER, unless the
    /// properties say otherwise (a test's plaintext listener).
    pub fn with_oauth(mut self, oauth: OAuthBearer) -> Self {
        for (key, value) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "OAUTHBEARER"),
        ] {
            self.properties
                .entry(key.to_owned())
                .or_insert_with(|| value.to_owned());
        }
        self.oauth = Some(oauth);
        self
    }

    /// The context a client of these settings is created with.
    pub(super) fn context(&self) -> Logged {
        Logged {
            oauth: self.oauth.clone(),
        }
    }

    pub(super) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        // Only librdkafka's errors reach the log (through kafka/logs.rs, at
        // levels that mean what they say), unless the user raises log_level.
        config.set("log_level", "3");
        // librdkafka lets a new client open a connection only once per half
        // of this backoff (50 ms by default); a short-lived client (a fetch,
        // a cold start) would spend most of its life waiting for its first
        // metadata. Retries still back off exponentially to
        // reconnect.backoff.max.ms.
        config.set("reconnect.backoff.ms", "10");
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_connections_are_quick_unless_the_user_says_otherwise() {
        let default = KafkaConfig::new("b:9092").client_config();
        assert_eq!(default.get("reconnect.backoff.ms"), Some("10"));
        let chosen = KafkaConfig::new("b:9092")
            .with("reconnect.backoff.ms", "250")
            .client_config();
        assert_eq!(chosen.get("reconnect.backoff.ms"), Some("250"));
        assert_eq!(chosen.get("bootstrap.servers"), Some("b:9092"));
    }
}
