//! The registry through a running app's admin HTTP API (`sluice serve` or
//! the function app): the requests `handler/admin.rs` answers, with the
//! admin key in `x-functions-key`.

use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sluice_host::enrich::PipelineDefinition;
use sluice_host::registry::{Manifest, ShadowStatus};

use super::{Backend, TransformSummary, UploadOutcome};

/// An upload compiles the component on the server: give it time.
const TIMEOUT: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a non-JSON error body is shown.
const MAX_ERROR_BODY: usize = 500;

pub struct AdminApi {
    base: Url,
    key: Option<HeaderValue>,
    client: reqwest::Client,
}

/// A request: method, path segments under the base URL, query, body.
struct Call<'a> {
    method: Method,
    path: &'a [&'a str],
    query: &'a [(&'a str, &'a str)],
    body: Option<(&'static str, Vec<u8>)>,
}

impl<'a> Call<'a> {
    fn new(method: Method, path: &'a [&'a str]) -> Self {
        Call {
            method,
            path,
            query: &[],
            body: None,
        }
    }

    fn json(mut self, body: &Value) -> anyhow::Result<Self> {
        let bytes = serde_json::to_vec(body).context("encoding the request body")?;
        self.body = Some(("application/json", bytes));
        Ok(self)
    }
}

impl AdminApi {
    /// `base` is the app's address (`http://127.0.0.1:8080`,
    /// `https://myapp.azurewebsites.net`); routes are under its `/api`.
    pub fn new(base: &str, key: Option<&str>) -> anyhow::Result<Self> {
        let base = Url::parse(base).with_context(|| format!("--api {base}: not a URL"))?;
        anyhow::ensure!(
            matches!(base.scheme(), "http" | "https") && !base.cannot_be_a_base(),
            "--api {base}: expected an http:// or https:// address"
        );
        let key = key
            .map(|k| {
                let mut value = HeaderValue::from_str(k)
                    .context("the admin key is not a valid header value")?;
                value.set_sensitive(true);
                anyhow::Ok(value)
            })
            .transpose()?;
        if key.is_none() {
            tracing::warn!("no admin key: give --key or set SLUICE_ADMIN_KEY");
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(AdminApi { base, key, client })
    }

    fn url(&self, path: &[&str], query: &[(&str, &str)]) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("{}: cannot hold a path", self.base))?
            .pop_if_empty()
            .push("api")
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends `call` and decodes a successful answer; any other status is an
    /// error showing the status and the server's `{"error": ...}` message.
    fn send<T: DeserializeOwned>(&self, call: Call<'_>) -> anyhow::Result<T> {
        let url = self.url(call.path, call.query)?;
        let what = format!("{} {url}", call.method);
        let mut request = self.client.request(call.method, url);
        if let Some(key) = &self.key {
            request = request.header("x-functions-key", key.clone());
        }
        if let Some((content_type, body)) = call.body {
            request = request.header(CONTENT_TYPE, content_type).body(body);
        }
        tracing::debug!(request = %what, "admin API request");
        let (status, body) = sluice_host::io::wait(async move {
            let response = request.send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        })
        .with_context(|| what.clone())?;
        tracing::debug!(request = %what, %status, bytes = body.len(), "admin API answer");
        if !status.is_success() {
            return Err(anyhow!("{status}: {}", error_message(&body))).context(what);
        }
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "{what}: unexpected answer ({status}): {}",
                excerpt(&String::from_utf8_lossy(&body))
            )
        })
    }
}

/// The server's `{"error": message}`, else the start of the body.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.error,
        Err(_) => match String::from_utf8_lossy(body).trim() {
            "" => "(no message)".to_owned(),
            text => excerpt(text),
        },
    }
}

fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_BODY) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// `PUT /api/transforms/{name}` answers this.
#[derive(Deserialize)]
struct Uploaded {
    version: String,
    world: String,
    size: u64,
    active: bool,
}

#[derive(Deserialize)]
struct Applied {
    applied: Vec<String>,
}

impl Backend for AdminApi {
    fn upload(&self, name: &str, wasm: Vec<u8>, activate: bool) -> anyhow::Result<UploadOutcome> {
        let query: &[(&str, &str)] = if activate {
            &[("activate", "true")]
        } else {
            &[]
        };
        let uploaded: Uploaded = self.send(Call {
            method: Method::PUT,
            path: &["transforms", name],
            query,
            body: Some(("application/wasm", wasm)),
        })?;
        Ok(UploadOutcome {
            version: uploaded.version,
            world: uploaded.world,
            size: uploaded.size,
            active: uploaded.active,
        })
    }

    fn list(&self) -> anyhow::Result<Vec<TransformSummary>> {
        self.send(Call::new(Method::GET, &["transforms"]))
    }

    fn manifest(&self, name: &str) -> anyhow::Result<Manifest> {
        self.send(Call::new(Method::GET, &["transforms", name]))
    }

    fn activate(&self, name: &str, version: &str) -> anyhow::Result<Manifest> {
        self.send(
            Call::new(Method::POST, &["transforms", name, "activate"])
                .json(&json!({ "version": version }))?,
        )
    }

    fn rollback(&self, name: &str) -> anyhow::Result<Manifest> {
        self.send(Call::new(Method::POST, &["transforms", name, "rollback"]))
    }

    fn delete_version(&self, name: &str, version: &str) -> anyhow::Result<Manifest> {
        self.send(Call::new(
            Method::DELETE,
            &["transforms", name, "versions", version],
        ))
    }

    fn shadow(&self, name: &str, version: &str) -> anyhow::Result<Manifest> {
        self.send(
            Call::new(Method::POST, &["transforms", name, "shadow"])
                .json(&json!({ "version": version }))?,
        )
    }

    fn stop_shadow(&self, name: &str) -> anyhow::Result<Manifest> {
        self.send(Call::new(Method::DELETE, &["transforms", name, "shadow"]))
    }

    fn shadow_status(&self, name: &str) -> anyhow::Result<ShadowStatus> {
        self.send(Call::new(Method::GET, &["transforms", name, "shadow"]))
    }

    fn apply_pipelines(&self, definitions: &Value) -> anyhow::Result<Vec<String>> {
        let applied: Applied =
            self.send(Call::new(Method::POST, &["pipelines"]).json(definitions)?)?;
        Ok(applied.applied)
    }

    fn pipelines(&self) -> anyhow::Result<Vec<PipelineDefinition>> {
        let values: Vec<Value> = self.send(Call::new(Method::GET, &["pipelines"]))?;
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                PipelineDefinition::from_value(v)
                    .with_context(|| format!("GET /api/pipelines: entry [{i}]"))
            })
            .collect()
    }

    fn pipeline(&self, name: &str) -> anyhow::Result<PipelineDefinition> {
        let value: Value = self.send(Call::new(Method::GET, &["pipelines", name]))?;
        PipelineDefinition::from_value(&value)
            .with_context(|| format!("GET /api/pipelines/{name}: the answer"))
    }

    fn delete_pipeline(&self, name: &str) -> anyhow::Result<()> {
        let _: Value = self.send(Call::new(Method::DELETE, &["pipelines", name]))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_a_base_path_and_encode_names() {
        let api = AdminApi::new("https://example.net/prefix/", Some("k")).unwrap();
        let url = api
            .url(&["transforms", "a b/c"], &[("activate", "true")])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://example.net/prefix/api/transforms/a%20b%2Fc?activate=true"
        );
        let api = AdminApi::new("http://127.0.0.1:8080", None).unwrap();
        assert_eq!(
            api.url(&["pipelines"], &[]).unwrap().as_str(),
            "http://127.0.0.1:8080/api/pipelines"
        );
        assert!(AdminApi::new("127.0.0.1:8080", None).is_err());
    }

    #[test]
    fn errors_show_the_servers_message() {
        assert_eq!(error_message(br#"{"error":"wrong key"}"#), "wrong key");
        assert_eq!(error_message(b"  Bad Gateway \n"), "Bad Gateway");
        assert_eq!(error_message(b""), "(no message)");
    }
}
