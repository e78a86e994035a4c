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
        let url = format!("{}/schemas/ids/{id}", self.url);
        // A runtime and client per fetch: schemas are fetched once each, and
        // a registry that owned a runtime could not be dropped from async
        // code (the HTTP app drops it on shutdown).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| error(e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| error(e.to_string()))?;
        let (status, body) = runtime
            .block_on(async {
                let response = client.get(&url).send().await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.text().await?))
            })
            .map_err(|e| error(e.to_string()))?;
        if !status.is_success() {
            return Err(error(format!("HTTP {status}: {body}")));
        }
        let document: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| error(e.to_string()))?;
        if let Some(kind) = document["schemaType"].as_str().filter(|k| *k != "AVRO") {
            return Err(error(format!("is a {kind} schema, not Avro")));
        }
        let text = document["schema"]
            .as_str()
            .ok_or_else(|| error("answer has no `schema` field".into()))?;
        let schema = Arc::new(Schema::parse_str(text).map_err(|e| error(e.to_string()))?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id, schema.clone());
        }
        Ok(schema)
    }
}
