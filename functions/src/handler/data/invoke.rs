//! `POST /api/transforms/{name}/invoke`: a transform on records posted in
//! the request, one outcome per record.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_host::fetch::dry_run;
use sluice_host::record::{Header, KafkaRecord};
use utoipa::IntoParams;

use super::{ApiError, DataApi, load_transform};
use crate::render::outcome_json;

/// A record to invoke a transform on: a bare JSON value, or
/// `{"key", "value", "headers"}` with `"value"` as JSON or text.
fn invoke_record(i: usize, item: &Value) -> KafkaRecord {
    let as_bytes = |v: &Value| match v {
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    };
    let structured = item.as_object().filter(|o| {
        o.contains_key("value")
            && o.keys()
                .all(|k| ["key", "value", "headers"].contains(&k.as_str()))
    });
    let mut record = KafkaRecord::from_value("invoke", i as i64, Vec::new());
    match structured {
        Some(object) => {
            record.value = object.get("value").filter(|v| !v.is_null()).map(as_bytes);
            record.key = object.get("key").filter(|v| !v.is_null()).map(as_bytes);
            if let Some(Value::Object(headers)) = object.get("headers") {
                record.headers = headers
                    .iter()
                    .map(|(k, v)| Header {
                        key: k.clone(),
                        value: Some(as_bytes(v)),
                    })
                    .collect();
            }
        }
        None => record.value = Some(as_bytes(item)),
    }
    record
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct InvokeParams {
    #[serde(default)]
    pub(super) version: Option<String>,
}

#[utoipa::path(post, path = "/api/transforms/{name}/invoke", tag = "data",
    summary = "Run a transform on records posted in the request",
    params(("name" = String, Path, description = "Transform name"), InvokeParams),
    request_body(content = serde_json::Value, description = "A list of JSON values, or of {key, value, headers}"),
    responses((status = 200, description = "{transform, version, outcomes}"), (status = 404, description = "Unknown transform")),
    security(("functions_key" = []), ("bearer" = [])))]
pub(super) async fn invoke(
    State(api): State<Arc<DataApi>>,
    Path(name): Path<String>,
    Query(params): Query<InvokeParams>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let items = match body {
        Value::Array(items) => items,
        single => vec![single],
    };
    if items.len() as u64 > api.limits.max_count {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} records; at most {} per request",
                items.len(),
                api.limits.max_count
            ),
        ));
    }
    let records: Vec<KafkaRecord> = items
        .iter()
        .enumerate()
        .map(|(i, v)| invoke_record(i, v))
        .collect();
    let transform = load_transform(&api, &name, params.version.as_deref()).await?;
    let version = transform.short_version().to_owned();
    let outcomes = tokio::task::spawn_blocking(move || dry_run(&transform, &records))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(Json(json!({
        "transform": name,
        "version": version,
        "outcomes": outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
    }))
    .into_response())
}
