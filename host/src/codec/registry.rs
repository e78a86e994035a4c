//! A Confluent Schema Registry client: `GET /schemas/ids/{id}`, each schema
//! fetched once per process.
//!
//! Two kinds of failure must never be confused. The registry saying it has
//! no such schema (404, or an answer that is not an Avro schema) is about
//! the record: it cannot be decoded, now or later, so it is a dead letter,
//! and the answer is believed for a while, so a stream of records with a
//! bad id costs one round trip, not one per record. The registry not
//! answering (a refused connection, a timeout, 5xx, 429) or refusing us
//! (401, 403) says nothing about the record: transient answers are retried
//! with backoff, and what still fails is [`CodecError::RegistryUnavailable`],
//! which callers turn into a failed run, never into dead letters, and which
//! is never cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sluice_avro::WriterSchema;

use super::CodecError;
use crate::identity::Secret;
use crate::retry::Backoff;

/// How long an answer of "no such schema" is believed.
const MISS_TTL: Duration = Duration::from_secs(30);

/// Each request's own limit; retries come on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How the registry is signed in to. The secrets are never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    /// HTTP basic auth: Confluent Cloud's API key and secret.
    Basic { username: String, password: Secret },
    /// A bearer token.
    Bearer(Secret),
}

impl RegistryAuth {
    /// `SLUICE_SCHEMA_REGISTRY_USERNAME` and `..._PASSWORD`, or
    /// `SLUICE_SCHEMA_REGISTRY_TOKEN`.
    pub fn from_env() -> Option<RegistryAuth> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        RegistryAuth::from_parts(
            var("SLUICE_SCHEMA_REGISTRY_USERNAME"),
            var("SLUICE_SCHEMA_REGISTRY_PASSWORD"),
            var("SLUICE_SCHEMA_REGISTRY_TOKEN"),
        )
    }

    /// A user (with its password, empty when none is given) or a token.
    pub fn from_parts(
        username: Option<String>,
        password: Option<String>,
        token: Option<String>,
    ) -> Option<RegistryAuth> {
        match (username, token) {
            (Some(username), _) => Some(RegistryAuth::Basic {
                username,
                password: Secret::new(password.unwrap_or_default()),
            }),
            (None, Some(token)) => Some(RegistryAuth::Bearer(Secret::new(token))),
            (None, None) => None,
        }
    }

    fn sign(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            RegistryAuth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
            RegistryAuth::Bearer(token) => request.bearer_auth(token.expose()),
        }
    }
}

#[derive(Debug)]
pub struct SchemaRegistry {
    url: String,
    /// One connection pool for every request (TLS set up once).
    client: reqwest::Client,
    /// Sent with every request.
    auth: Option<RegistryAuth>,
    /// How transient failures are retried.
    backoff: Backoff,
    cache: Mutex<HashMap<u32, Arc<WriterSchema>>>,
    /// Ids the registry said it could not give, when, and why.
    misses: Mutex<HashMap<u32, (Instant, String)>>,
}

/// Why one request got no document.
#[derive(Debug)]
enum Failure {
    /// Worth asking again: the registry did not answer, or answered that
    /// it could not now.
    Transient(String),
    /// Asking again will not help, but the registry, not the record, is at
    /// fault (our credentials, a garbled answer).
    Refused(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transient(reason) | Failure::Refused(reason) => f.write_str(reason),
        }
    }
}

impl SchemaRegistry {
    pub fn new(url: &str) -> Result<Self, CodecError> {
        let unusable = |reason: String| CodecError::RegistryUnavailable {
            url: url.to_owned(),
            reason,
        };
        url::Url::parse(url).map_err(|e| unusable(e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| unusable(e.to_string()))?;
        Ok(SchemaRegistry {
            url: url.trim_end_matches('/').to_owned(),
            client,
            auth: None,
            backoff: Backoff::NETWORK,
            cache: Mutex::default(),
            misses: Mutex::default(),
        })
    }

    /// The same client, signing every request in with `auth`.
    pub fn with_auth(mut self, auth: Option<RegistryAuth>) -> Self {
        self.auth = auth;
        self
    }

    /// The same client, retrying transient failures as `backoff` says.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The writer schema `id`, from the cache or the registry. A schema
    /// that cannot be used (nested past [`sluice_avro::MAX_SCHEMA_DEPTH`],
    /// not Avro) is the registry's definitive answer for the id.
    pub fn schema(&self, id: u32) -> Result<Arc<WriterSchema>, CodecError> {
        if let Some(schema) = self.cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(schema);
        }
        let missing = |reason: String| CodecError::Registry {
            url: self.url.clone(),
            id,
            reason,
        };
        if let Some(reason) = self.recent_miss(id) {
            return Err(missing(reason));
        }
        let document = self
            .get(&format!("/schemas/ids/{id}"))
            .map_err(|failure| self.unavailable(&format!("schema {id}"), failure))?;
        let found = document
            .ok_or_else(|| "HTTP 404: no such schema".to_owned())
            .and_then(|document| self.remember(id, &document));
        match found {
            Ok(schema) => Ok(schema),
            Err(reason) => {
                if let Ok(mut misses) = self.misses.lock() {
                    misses.insert(id, (Instant::now(), reason.clone()));
                }
                Err(missing(reason))
            }
        }
    }

    /// Why `id` could not be had, if the registry said so in the last
    /// MISS_TTL.
    fn recent_miss(&self, id: u32) -> Option<String> {
        let misses = self.misses.lock().ok()?;
        let (when, reason) = misses.get(&id)?;
        (when.elapsed() < MISS_TTL).then(|| {
            format!(
                "{reason} (remembered; asked again after {} s)",
                MISS_TTL.as_secs()
            )
        })
    }

    /// Every version of `subject` (oldest first), or `None` when the
    /// registry does not know the subject. Each is cached by id too. A
    /// registry that cannot be asked is an error, never `None`: the caller
    /// would otherwise write a run without the subject's typed columns.
    pub fn subject_schemas(
        &self,
        subject: &str,
    ) -> Result<Option<Vec<Arc<WriterSchema>>>, CodecError> {
        let what = format!("subject {subject}");
        let Some(versions) = self
            .get(&format!("/subjects/{subject}/versions"))
            .map_err(|failure| self.unavailable(&what, failure))?
        else {
            return Ok(None);
        };
        let bad_answer = |reason: String| {
            self.unavailable(
                &what,
                Failure::Refused(format!("a garbled answer: {reason}")),
            )
        };
        let versions: Vec<u64> = serde_json::from_value(versions)
            .map_err(|e| bad_answer(format!("versions are not a list of numbers: {e}")))?;
        let mut schemas = Vec::with_capacity(versions.len());
        for version in versions {
            let document = self
                .get(&format!("/subjects/{subject}/versions/{version}"))
                .map_err(|failure| self.unavailable(&what, failure))?
                .ok_or_else(|| {
                    self.unavailable(
                        &what,
                        Failure::Transient(format!("version {version} disappeared")),
                    )
                })?;
            let id = document["id"]
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| bad_answer(format!("version {version} has no schema id")))?;
            let schema = self
                .remember(id, &document)
                .map_err(|reason| CodecError::Registry {
                    url: format!("{}/subjects/{subject}", self.url),
                    id,
                    reason,
                })?;
            schemas.push(schema);
        }
        Ok(Some(schemas))
    }

    fn unavailable(&self, what: &str, failure: Failure) -> CodecError {
        CodecError::RegistryUnavailable {
            url: self.url.clone(),
            reason: format!("asking for {what}: {failure}"),
        }
    }

    /// Parses and caches a registry answer carrying `schema`.
    fn remember(&self, id: u32, document: &serde_json::Value) -> Result<Arc<WriterSchema>, String> {
        if let Some(kind) = document["schemaType"].as_str().filter(|k| *k != "AVRO") {
            return Err(format!("is a {kind} schema, not Avro"));
        }
        let text = document["schema"]
            .as_str()
            .ok_or("answer has no `schema` field")?;
        let schema = Arc::new(WriterSchema::parse(text).map_err(|e| e.to_string())?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id, schema.clone());
        }
        Ok(schema)
    }

    /// `GET path` as JSON; `None` on 404. Transient failures are retried
    /// as the backoff says before they are returned.
    fn get(&self, path: &str) -> Result<Option<serde_json::Value>, Failure> {
        let url = format!("{}{path}", self.url);
        let client = self.client.clone();
        let auth = self.auth.clone();
        let backoff = self.backoff;
        crate::io::wait(async move {
            backoff
                .run(
                    &url,
                    || get_once(&client, &url, auth.as_ref()),
                    |failure| matches!(failure, Failure::Transient(_)),
                )
                .await
        })
    }
}

async fn get_once(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&RegistryAuth>,
) -> Result<Option<serde_json::Value>, Failure> {
    let request = client.get(url);
    let request = match auth {
        Some(auth) => auth.sign(request),
        None => request,
    };
    // Connecting, sending and reading the answer all fail the same way
    // when the registry goes away: worth another try.
    let response = request
        .send()
        .await
        .map_err(|e| Failure::Transient(error_chain(&e)))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| Failure::Transient(error_chain(&e)))?;
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        let reason = format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        );
        return Err(if transient_status(status) {
            Failure::Transient(reason)
        } else {
            Failure::Refused(reason)
        });
    }
    serde_json::from_str(&body)
        .map(Some)
        .map_err(|e| Failure::Refused(format!("the answer is not JSON: {e}")))
}

/// Answers that say "not now" rather than "never".
fn transient_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// An error with its causes ("error sending request: connection refused"),
/// which reqwest's own message leaves out.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_that_say_not_now_are_transient() {
        for status in [500, 502, 503, 504, 429, 408] {
            assert!(
                transient_status(StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
        for status in [400, 401, 403, 409, 422] {
            assert!(
                !transient_status(StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
    }

    #[test]
    fn a_registry_that_does_not_answer_is_unavailable_and_not_remembered() {
        // A port nothing listens on: connections are refused at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let registry = SchemaRegistry::new(&url).unwrap().with_backoff(Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(1),
            retries: 2,
        });
        for _ in 0..2 {
            let error = registry.schema(7).unwrap_err();
            assert!(error.is_unavailable(), "{error}");
            assert!(!error.to_string().contains("remembered"), "{error}");
        }
        let error = registry.subject_schemas("t-value").unwrap_err();
        assert!(error.is_unavailable(), "{error}");
    }
}
