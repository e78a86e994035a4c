//! A Confluent Schema Registry client: `GET /schemas/ids/{id}`, each schema
//! fetched once per process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apache_avro::Schema;

use super::CodecError;

#[derive(Debug)]
pub struct SchemaRegistry {
    url: String,
    cache: Mutex<HashMap<u32, Arc<Schema>>>,
}

impl SchemaRegistry {
    pub fn new(url: &str) -> Result<Self, CodecError> {
        url::Url::parse(url).map_err(|e| CodecError::Registry {
            url: url.to_owned(),
            id: 0,
            reason: e.to_string(),
        })?;
        Ok(SchemaRegistry {
            url: url.trim_end_matches('/').to_owned(),
            cache: Mutex::default(),
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
        let document = self
            .get(&format!("/schemas/ids/{id}"))
            .map_err(&error)?
            .ok_or_else(|| error("HTTP 404: no such schema".into()))?;
        self.remember(id, &document).map_err(error)
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
        // A runtime and client per request: schemas are fetched once each,
        // and a registry that owned a runtime could not be dropped from
        // async code (the HTTP app drops it on shutdown).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let (status, body) = runtime
            .block_on(async {
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
