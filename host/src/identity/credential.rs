//! A chosen source and the tokens it gave, kept per scope until shortly
//! before they expire, so that every client of a process (the storage, each
//! Kafka client) asks the endpoint once per token lifetime, not per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::token::{self, AccessToken};
use super::{AzureIdentity, IdentityError, Source};
use crate::retry::Backoff;

/// A token is asked for again once it has less than this left, as the
/// Azure SDKs do: a caller never gets one about to expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Tokens from one [`Source`].
#[derive(Debug)]
pub struct Credential {
    source: Source,
    http: reqwest::Client,
    tokens: Mutex<HashMap<String, AccessToken>>,
    margin: Duration,
    backoff: Backoff,
}

impl Credential {
    /// The source `settings` choose (see [`Source::choose`]), logged once
    /// as used for `used_for`.
    pub fn choose(
        settings: &AzureIdentity,
        used_for: &'static str,
    ) -> Result<Arc<Credential>, IdentityError> {
        let source = Source::choose(settings)?;
        source.log_once(used_for);
        Credential::new(source).map(Arc::new)
    }

    pub fn new(source: Source) -> Result<Credential, IdentityError> {
        Ok(Credential {
            source,
            http: token::http_client()?,
            tokens: Mutex::default(),
            margin: REFRESH_MARGIN,
            backoff: Backoff::NETWORK,
        })
    }

    /// Tokens are asked for again once they have less than `margin` left.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Transient failures of the token endpoint are retried as `backoff`
    /// says.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// A token of `scope` with more than the refresh margin left: the one
    /// kept, or a new one.
    pub async fn token(&self, scope: &str) -> Result<AccessToken, IdentityError> {
        if let Some(kept) = self.kept(scope) {
            return Ok(kept);
        }
        let fetched = self
            .backoff
            .run(
                "an Entra ID token",
                || token::fetch(&self.http, &self.source, scope),
                IdentityError::is_transient,
            )
            .await?;
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(scope.to_owned(), fetched.clone());
        }
        Ok(fetched)
    }

    /// [`Credential::token`] for a plain thread (librdkafka's callbacks):
    /// run on the I/O runtime, so that it may be called from anywhere.
    pub fn token_blocking(self: &Arc<Self>, scope: &str) -> Result<AccessToken, IdentityError> {
        if let Some(kept) = self.kept(scope) {
            return Ok(kept);
        }
        let credential = self.clone();
        let scope = scope.to_owned();
        crate::io::wait(async move { credential.token(&scope).await })
    }

    fn kept(&self, scope: &str) -> Option<AccessToken> {
        let now = SystemTime::now();
        self.tokens
            .lock()
            .ok()?
            .get(scope)
            .filter(|token| token.fresh(now, self.margin))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Secret;

    #[test]
    fn a_token_is_fresh_until_the_margin_before_it_expires() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = |left: u64| AccessToken {
            secret: Secret::new("t"),
            expires_at: now + Duration::from_secs(left),
        };
        assert!(token(301).fresh(now, REFRESH_MARGIN));
        assert!(!token(300).fresh(now, REFRESH_MARGIN));
        assert!(!token(0).fresh(now, REFRESH_MARGIN));
        let expired = AccessToken {
            secret: Secret::new("t"),
            expires_at: now - Duration::from_secs(1),
        };
        assert!(!expired.fresh(now, REFRESH_MARGIN));
    }
}
