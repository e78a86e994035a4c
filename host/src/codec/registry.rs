//! A Confluent Schema Registry client: `GET /schemas/ids/{id}`, each schema
//! fetched once per process, and an id the registry does not know asked
//! again only after a while, so a stream of records with a bad id costs one
//! round trip, not one per record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apache_avro::Schema;

use super::CodecError;

/// How long an answer of "no such schema" is believed.
const MISS_TTL: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct SchemaRegistry {
    url: String,
    /// One connection pool for every request (TLS set up once).
    client: reqwest::Client,
    cache: Mutex<HashMap<u32, Arc<Schema>>>,
    /// Ids the registry could not give, when, and why.
    misses: Mutex<HashMap<u32, (Instant, String)>>,
}

impl SchemaRegistry {
    pub fn new(url: &str) -> Result<Self, CodecError> {
        url::Url::parse(url).map_err(|e| CodecError::Registry {
            url: url.to_owned(),
            id: 0,
            reason: e.to_string(),
        })?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| CodecError::Registry {
                url: url.to_owned(),
                id: 0,
                reason: e.to_string(),
            })?;
        Ok(SchemaRegistry {
            url: url.trim_end_matches('/').to_owned(),
            client,
            cache: Mutex::default(),
            misses: Mutex::default(),
        })
    }

    /// The writer schema `id`, from the cache or the registry.
    pub fn schema(&self, id: u32) -> Result<Arc<Schema>, CodecError> {
        if let Some(schema) = self.cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(schema);
        }
        let error = |reason: String| CodecError::Registry {
            url: self.url.clone(),
            id,
            reason,
        };
        if let Some(reason) = self.recent_miss(id) {
            return Err(error(reason));
        }
        let found = self
            .get(&format!("/schemas/ids/{id}"))
            .and_then(|d| d.ok_or_else(|| "HTTP 404: no such schema".to_owned()))
            .and_then(|document| self.remember(id, &document));
        match found {
            Ok(schema) => Ok(schema),
            Err(reason) => {
                if let Ok(mut misses) = self.misses.lock() {
                    misses.insert(id, (Instant::now(), reason.clone()));
                }
                Err(error(reason))
            }
        }
    }

    /// Why `id` could not be had, if it was asked for in the last MISS_TTL.
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
    /// registry does not know the subject. Each is cached by id too.
    pub fn subject_schemas(&self, subject: &str) -> Result<Option<Vec<Arc<Schema>>>, CodecError> {
        let error = |reason: String| CodecError::Registry {
            url: format!("{}/subjects/{subject}", self.url),
            id: 0,
            reason,
        };
        let Some(versions) = self
            .get(&format!("/subjects/{subject}/versions"))
            .map_err(&error)?
        else {
            return Ok(None);
        };
        let versions: Vec<u64> = serde_json::from_value(versions)
            .map_err(|e| error(format!("versions are not a list of numbers: {e}")))?;
        let mut schemas = Vec::with_capacity(versions.len());
        for version in versions {
            let document = self
                .get(&format!("/subjects/{subject}/versions/{version}"))
                .map_err(&error)?
                .ok_or_else(|| error(format!("version {version} disappeared")))?;
            let id = document["id"]
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| error(format!("version {version} has no schema id")))?;
            schemas.push(self.remember(id, &document).map_err(error)?);
        }
        Ok(Some(schemas))
    }

    /// Parses and caches a registry answer carrying `schema`.
    fn remember(&self, id: u32, document: &serde_json::Value) -> Result<Arc<Schema>, String> {
        if let Some(kind) = document["schemaType"].as_str().filter(|k| *k != "AVRO") {
            return Err(format!("is a {kind} schema, not Avro"));
        }
        let text = document["schema"]
            .as_str()
            .ok_or("answer has no `schema` field")?;
        let schema = Arc::new(Schema::parse_str(text).map_err(|e| e.to_string())?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id, schema.clone());
        }
        Ok(schema)
    }

    /// `GET path` as JSON; `None` on 404.
    fn get(&self, path: &str) -> Result<Option<serde_json::Value>, String> {
        let url = format!("{}{path}", self.url);
        let client = self.client.clone();
        let (status, body) = crate::io::wait(async move {
            let response = client.get(&url).send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
        .map_err(|e| e.to_string())?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}: {body}"));
        }
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}
