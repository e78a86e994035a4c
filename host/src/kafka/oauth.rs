//! SASL OAUTHBEARER with Entra ID tokens, for Event Hubs' Kafka endpoint
//! (and any Kafka that takes them): librdkafka asks for a token when a
//! client starts and again at 80% of each token's lifetime, through
//! rdkafka's `ClientContext::generate_oauth_token`, which every context of
//! ours answers from one [`Credential`].
//!
//! librdkafka serves that request from a client's poll. Clients that poll
//! all the time (the group consumer, the producer's own thread, a bounded
//! read) are served as they go; a consumer about to ask for metadata
//! before it ever polls (a new bounded consumer, one idle in the fetch
//! pool) is served first by [`serve_token_request`].

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rdkafka::client::OAuthToken;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};

use crate::identity::Credential;

/// Where a client's tokens come from: a credential and the scope asked for.
#[derive(Clone)]
pub struct OAuthBearer {
    credential: Arc<Credential>,
    scope: String,
}

impl OAuthBearer {
    pub fn new(credential: Arc<Credential>, scope: impl Into<String>) -> Self {
        OAuthBearer {
            credential,
            scope: scope.into(),
        }
    }

    /// Event Hubs' scope for the namespace of `bootstrap_servers`
    /// (`ns.servicebus.windows.net:9093` gives
    /// `https://ns.servicebus.windows.net/.default`).
    pub fn event_hubs_scope(bootstrap_servers: &str) -> String {
        let first = bootstrap_servers.split(',').next().unwrap_or("").trim();
        let host = first.rsplit_once(':').map_or(first, |(host, _port)| host);
        format!("https://{host}/.default")
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The token librdkafka asked for. A failure is logged (librdkafka
    /// asks again after 10 s) and returned for librdkafka to report.
    pub(super) fn token(&self) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let token = self
            .credential
            .token_blocking(&self.scope)
            .inspect_err(|error| {
                tracing::warn!(scope = self.scope, %error, "no Entra ID token for Kafka");
            })?;
        let lifetime = token
            .expires_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Ok(OAuthToken {
            token: token.secret.expose().to_owned(),
            // Event Hubs takes the principal from the token; librdkafka
            // wants a name.
            principal_name: self
                .credential
                .source()
                .client_id()
                .unwrap_or("sluice")
                .to_owned(),
            lifetime_ms: i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX),
        })
    }
}

/// The answer of a context that has no credential: librdkafka asks only
/// when `sasl.mechanism` is `OAUTHBEARER`, which `kafka_auth: entra` sets.
pub(super) fn token_of(
    oauth: Option<&OAuthBearer>,
) -> Result<OAuthToken, Box<dyn std::error::Error>> {
    match oauth {
        Some(oauth) => oauth.token(),
        None => Err(
            "sasl.mechanism is OAUTHBEARER but no Entra ID credential is configured \
                     (set kafka_auth to entra)"
                .into(),
        ),
    }
}

impl PartialEq for OAuthBearer {
    fn eq(&self, other: &Self) -> bool {
        self.scope == other.scope && Arc::ptr_eq(&self.credential, &other.credential)
    }
}

impl Eq for OAuthBearer {}

impl std::fmt::Debug for OAuthBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthBearer")
            .field("scope", &self.scope)
            .field("credential", &self.credential.source().kind())
            .finish()
    }
}

/// Serves librdkafka's pending token request of an unassigned consumer
/// (it holds no records, so a poll returns none) before it asks the
/// cluster anything.
pub(super) fn serve_token_request<C: ConsumerContext>(consumer: &BaseConsumer<C>, wanted: bool) {
    if wanted {
        let _ = consumer.poll(Duration::ZERO);
    }
}
