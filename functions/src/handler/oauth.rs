//! OAuth2 bearer tokens (the consumer skeleton's `api_security: ["oauth2", "apikey"]`):
//! a JWT signed by the identity provider's keys (its JWKS), issued by the
//! configured issuer for the configured audience, not expired, and carrying
//! a required role or scope where one is configured. Keys are fetched once
//! and again when a token names a key not seen yet (the provider rotated),
//! at most every `refetch_after`. While the last fetch failed, a token the
//! keys at hand cannot check is answered with that failure (a 503), not
//! as a bad token: a client that signs in again on a 401 would only loop.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::RwLock;

/// Signatures by public keys only: a shared secret (HS*) would let anyone
/// holding it mint tokens, and `none` is no signature.
const ALLOWED: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
];

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The `iss` tokens must carry, e.g.
    /// `https://login.microsoftonline.com/<tenant>/v2.0`.
    pub issuer: String,
    /// The `aud` tokens must carry (one of).
    pub audience: String,
    /// Where the signing keys are; when absent, the issuer's OpenID
    /// configuration names it.
    pub jwks_url: Option<String>,
    /// A token naming an unknown key fetches the keys again no sooner than
    /// this after the last fetch, so bad tokens cannot hammer the provider.
    pub refetch_after: Duration,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("not a JWT: {0}")]
    Malformed(String),
    #[error("tokens signed with {0:?} are not accepted (RS*, PS256, ES256, ES384 are)")]
    Algorithm(Algorithm),
    #[error("the token names no signing key (`kid`)")]
    NoKeyId,
    #[error("signing key `{0}` is not one of the issuer's keys")]
    UnknownKey(String),
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the token lacks the role or scope `{0}`")]
    MissingRole(String),
    #[error("the issuer's keys could not be fetched: {0}")]
    Keys(String),
}

/// What a valid token says about its holder.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub sub: Option<String>,
    /// App roles (Entra ID puts them here).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Delegated scopes, space-separated.
    #[serde(default)]
    pub scp: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

impl Claims {
    /// Whether `role` is among the token's roles or scopes.
    pub fn grants(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
            || [&self.scp, &self.scope]
                .into_iter()
                .flatten()
                .any(|scopes| scopes.split_whitespace().any(|s| s == role))
    }
}

struct Keys {
    set: JwkSet,
    /// When the keys were last asked for, whatever came of it.
    asked: Option<Instant>,
    /// Why the last ask failed; `None` once one succeeds.
    failed: Option<TokenError>,
}

impl Keys {
    fn may_ask(&self, every: Duration) -> bool {
        self.asked.is_none_or(|at| at.elapsed() >= every)
    }

    /// Why `kid` cannot be checked now that the keys may not be asked for
    /// again yet: the last fetch's failure, or a key the issuer does not
    /// have.
    fn unavailable(&self, kid: &str) -> TokenError {
        match &self.failed {
            Some(failure) => failure.clone(),
            None => TokenError::UnknownKey(kid.to_owned()),
        }
    }
}

pub struct OAuth {
    config: OAuthConfig,
    http: reqwest::Client,
    keys: RwLock<Keys>,
}

impl OAuth {
    pub fn new(config: OAuthConfig) -> Self {
        OAuth {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            keys: RwLock::new(Keys {
                set: JwkSet { keys: Vec::new() },
                asked: None,
                failed: None,
            }),
        }
    }

    /// The token's claims when it is valid and grants `role` (if any).
    pub async fn verify(&self, token: &str, role: Option<&str>) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(TokenError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(TokenError::NoKeyId)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?
            .claims;
        match role {
            Some(role) if !claims.grants(role) => Err(TokenError::MissingRole(role.to_owned())),
            _ => Ok(claims),
        }
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        let every = self.config.refetch_after;
        {
            let keys = self.keys.read().await;
            if let Some(jwk) = keys.set.find(kid) {
                return DecodingKey::from_jwk(jwk).map_err(|e| TokenError::Keys(e.to_string()));
            }
            if !keys.may_ask(every) {
                return Err(keys.unavailable(kid));
            }
        }
        let mut keys = self.keys.write().await;
        // Another request may have asked while this one waited.
        if keys.set.find(kid).is_none() {
            if !keys.may_ask(every) {
                return Err(keys.unavailable(kid));
            }
            keys.asked = Some(Instant::now());
            match self.fetch_keys().await {
                Ok(set) => {
                    tracing::info!(keys = set.keys.len(), "fetched the issuer's signing keys");
                    keys.set = set;
                    keys.failed = None;
                }
                Err(error) => {
                    keys.failed = Some(error.clone());
                    return Err(error);
                }
            }
        }
        let jwk = keys
            .set
            .find(kid)
            .ok_or_else(|| TokenError::UnknownKey(kid.to_owned()))?;
        DecodingKey::from_jwk(jwk).map_err(|e| TokenError::Keys(e.to_string()))
    }

    async fn fetch_keys(&self) -> Result<JwkSet, TokenError> {
        let url = match &self.config.jwks_url {
            Some(url) => url.clone(),
            None => self.discover_jwks_url().await?,
        };
        self.get_json(&url).await
    }

    async fn discover_jwks_url(&self) -> Result<String, TokenError> {
        #[derive(Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&url).await?;
        Ok(discovery.jwks_uri)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TokenError> {
        let failed = |e: &dyn std::fmt::Display| TokenError::Keys(format!("{url}: {e}"));
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| failed(&e))?
            .error_for_status()
            .map_err(|e| failed(&e))?;
        let body = response.bytes().await.map_err(|e| failed(&e))?;
        serde_json::from_slice(&body).map_err(|e| failed(&e))
    }
}

/// Whether `token` has the shape of a JWT (three dot-separated parts), as
/// opposed to a static key.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}
