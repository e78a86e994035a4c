//! The data API under `/api`: `GET /api/fetch` (records at offsets, with an
//! optional dry run of a transform) and `POST /api/transforms/{name}/invoke`
//! (a transform on records posted in the request, seed 003's on-demand
//! API), plus the fetch page at `/`. Reads reach only the configured
//! cluster; every request needs the API key.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_host::codec::SchemaRegistry;
use sluice_host::kafka::{KafkaError, ReaderPool, Start};
use sluice_host::record::{Header, KafkaRecord};
use sluice_host::runtime::Transform;
use sluice_host::transforms::{SourceError, TransformSource};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin::ApiError;
use super::auth::OAuthRule;
use crate::fetch::{FetchLimits, FetchQuery, dry_run, fetch, outcome_json, record_json};

pub struct DataApi {
    /// Connected consumers for fetches from the configured cluster.
    pub readers: Arc<ReaderPool>,
    pub limits: FetchLimits,
    pub key: Option<String>,
    /// OAuth2 tokens accepted besides the key.
    pub oauth: Option<OAuthRule>,
    /// Where named transforms come from: the registry, or a folder.
    pub transforms: Arc<TransformSource>,
    /// For `value_format=avro`.
    pub schema_registry: Option<Arc<SchemaRegistry>>,
}

/// The API routes (documented) and the page (not part of the API).
pub fn routes(api: Arc<DataApi>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(fetch_route))
        .routes(routes!(invoke))
        .layer(middleware::from_fn_with_state(api.clone(), require_key))
        .with_state(api)
        .route("/", get(page))
}

async fn require_key(State(api): State<Arc<DataApi>>, request: Request, next: Next) -> Response {
    let closed = "the data API is closed: no API key is configured (SLUICE_API_KEY)";
    super::auth::guard(
        api.key.as_deref(),
        api.oauth.as_ref(),
        closed,
        request,
        next,
    )
    .await
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FetchParams {
    topic: String,
    /// One partition or a comma-separated list.
    #[serde(default)]
    partition: Option<String>,
    /// One offset for every partition, or one per partition.
    #[serde(default)]
    offset: Option<String>,
    /// Instead of offsets: start at the first record at or after this time,
    /// Unix epoch milliseconds or RFC 3339 (`2026-11-22T01:00:00Z`).
    #[serde(default)]
    from_timestamp: Option<String>,
    #[serde(default)]
    count: Option<u64>,
    /// json (default), ndjson, csv or parquet; else the Accept header.
    #[serde(default)]
    format: Option<String>,
    /// A transform to dry-run on the records.
    #[serde(default)]
    transform: Option<String>,
    /// With `transform`: a version (prefix) instead of the active one.
    #[serde(default)]
    version: Option<String>,
    /// `avro` decodes Confluent-framed Avro through the schema registry;
    /// otherwise values are shown as stored (JSON or text).
    #[serde(default)]
    value_format: Option<String>,
}

fn numbers<T: std::str::FromStr>(
    field: &str,
    text: Option<&str>,
    default: T,
) -> Result<Vec<T>, ApiError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(vec![default]),
        Some(text) => text
            .split(',')
            .map(|part| {
                part.trim().parse().map_err(|_| {
                    ApiError(
                        StatusCode::BAD_REQUEST,
                        format!("`{field}`: `{part}` is not a number"),
                    )
                })
            })
            .collect(),
    }
}

fn query_of(params: &FetchParams) -> Result<FetchQuery, ApiError> {
    let partitions: Vec<i32> = numbers("partition", params.partition.as_deref(), 0)?;
    let offsets: Vec<i64> = numbers("offset", params.offset.as_deref(), 0)?;
    if offsets.len() != 1 && offsets.len() != partitions.len() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "`offset` has {} values for {} partitions: give one, or one per partition",
                offsets.len(),
                partitions.len()
            ),
        ));
    }
    let start = match params.from_timestamp.as_deref().map(str::trim) {
        Some(time) if !time.is_empty() => {
            if params.offset.is_some() {
                return Err(ApiError(
                    StatusCode::BAD_REQUEST,
                    "give `offset` or `from_timestamp`, not both".into(),
                ));
            }
            Start::Timestamp {
                partitions,
                millis: millis_of(time)?,
            }
        }
        _ => Start::Offsets(
            partitions
                .iter()
                .enumerate()
                .map(|(i, p)| (*p, offsets[if offsets.len() == 1 { 0 } else { i }]))
                .collect(),
        ),
    };
    Ok(FetchQuery {
        topic: params.topic.clone(),
        start,
        count: params.count.unwrap_or(10),
    })
}

/// Epoch milliseconds, or an RFC 3339 time.
fn millis_of(time: &str) -> Result<i64, ApiError> {
    time.parse::<i64>()
        .ok()
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(time)
                .ok()
                .map(|t| t.timestamp_millis())
        })
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("`from_timestamp`: `{time}` is neither epoch milliseconds nor RFC 3339"),
            )
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    NdJson,
    Csv,
    Parquet,
}

fn format_of(params: &FetchParams, accept: Option<&str>) -> Result<Format, ApiError> {
    let named = params.format.as_deref().map(str::to_ascii_lowercase);
    match named.as_deref() {
        Some("json") => Ok(Format::Json),
        Some("ndjson" | "jsonl") => Ok(Format::NdJson),
        Some("csv") => Ok(Format::Csv),
        Some("parquet") => Ok(Format::Parquet),
        Some(other) => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("`format`: `{other}` is not one of json, ndjson, csv, parquet"),
        )),
        None => Ok(match accept.unwrap_or_default() {
            a if a.contains("text/csv") => Format::Csv,
            a if a.contains("application/x-ndjson") => Format::NdJson,
            a if a.contains("application/vnd.apache.parquet") => Format::Parquet,
            _ => Format::Json,
        }),
    }
}

fn kafka_error(error: KafkaError) -> ApiError {
    let status = match &error {
        KafkaError::UnknownTopic { .. } | KafkaError::UnknownPartition { .. } => {
            StatusCode::NOT_FOUND
        }
        KafkaError::OffsetOutOfRange { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        KafkaError::BadTopicName { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    };
    ApiError(status, error.to_string())
}

/// A named transform, from the app's one source; a name that is not a
/// name (a path, say) is a 400 naming the rule.
async fn load_transform(
    api: &DataApi,
    name: &str,
    version: Option<&str>,
) -> Result<Arc<Transform>, ApiError> {
    let (source, name, version) = (
        api.transforms.clone(),
        name.to_owned(),
        version.map(str::to_owned),
    );
    tokio::task::spawn_blocking(move || source.load_named(&name, version.as_deref()))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

impl From<SourceError> for ApiError {
    fn from(error: SourceError) -> Self {
        let status = if error.is_not_found() {
            StatusCode::NOT_FOUND
        } else if error.is_client_error() {
            StatusCode::BAD_REQUEST
        } else {
            tracing::error!(%error, "loading a transform failed");
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError(status, error.to_string())
    }
}

#[utoipa::path(get, path = "/api/fetch", tag = "data",
    summary = "Records at offsets, optionally with a transform's dry-run outcome",
    params(FetchParams),
    responses((status = 200, description = "JSON (records, complete, limited_by), NDJSON, CSV or Parquet"),
        (status = 404, description = "Unknown topic, partition or transform"),
        (status = 416, description = "Offset outside the partition; the message gives the range")),
    security(("functions_key" = []), ("bearer" = [])))]
async fn fetch_route(
    State(api): State<Arc<DataApi>>,
    headers: axum::http::HeaderMap,
    params: Result<Query<FetchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let query = query_of(&params)?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = format_of(&params, accept)?;
    let transform = match &params.transform {
        Some(name) if !name.is_empty() => {
            Some(load_transform(&api, name, params.version.as_deref()).await?)
        }
        _ => None,
    };
    let avro = match params.value_format.as_deref() {
        None | Some("" | "json" | "raw") => None,
        Some("avro") => Some(api.schema_registry.clone().ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "`value_format=avro` needs a schema registry: set SLUICE_SCHEMA_REGISTRY_URL"
                    .into(),
            )
        })?),
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("`value_format`: `{other}` is not one of json, raw, avro"),
            ));
        }
    };
    let (readers, limits) = (api.readers.clone(), api.limits);
    let read = tokio::task::spawn_blocking(move || {
        let mut fetched = fetch(&readers, &query, &limits).map_err(kafka_error)?;
        if let Some(registry) = &avro {
            crate::fetch::decode_avro(&mut fetched.records, registry);
        }
        let outcomes = match &transform {
            Some(t) => Some(
                dry_run(t, &fetched.records)
                    .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?,
            ),
            None => None,
        };
        Ok::<_, ApiError>((query, fetched, outcomes))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (query, fetched, outcomes) = read?;
    let records = &fetched.records;
    let body_of = |write: &dyn Fn(&mut Vec<u8>) -> anyhow::Result<()>| {
        let mut body = Vec::new();
        write(&mut body)
            .map(|_| body)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))
    };
    let (content_type, body) = match format {
        Format::Json => {
            let end_reached = fetched.limited_by.is_none();
            let ends: BTreeMap<String, i64> = fetched
                .ends
                .iter()
                .map(|(p, e)| (p.to_string(), *e))
                .collect();
            let value = json!({
                "topic": query.topic,
                "records": records.iter().enumerate().map(|(i, r)| record_json(r, outcomes.as_ref().and_then(|o| o.get(i)))).collect::<Vec<_>>(),
                "returned": records.len(),
                "complete": end_reached,
                "limited_by": fetched.limited_by,
                "range_ends": ends,
                "note": if end_reached { "every requested record that exists was returned; a read never waits past the partition's end" } else { "a limit stopped the read; ask again from the next offset" },
            });
            ("application/json", value.to_string().into_bytes())
        }
        Format::NdJson => (
            "application/x-ndjson",
            body_of(&|out| {
                crate::fetch::write_json_lines(records, outcomes.as_deref(), out)
                    .map_err(Into::into)
            })?,
        ),
        Format::Csv => (
            "text/csv; charset=utf-8",
            body_of(&|out| crate::fetch::write_csv(records, out).map_err(Into::into))?,
        ),
        Format::Parquet => (
            "application/vnd.apache.parquet",
            body_of(&|out| crate::fetch::write_parquet(records, out))?,
        ),
    };
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    if let Some(limit) = fetched.limited_by {
        let value = serde_json::to_value(limit)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().insert("x-sluice-limited-by", value);
        }
    }
    Ok(response)
}

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
struct InvokeParams {
    #[serde(default)]
    version: Option<String>,
}

#[utoipa::path(post, path = "/api/transforms/{name}/invoke", tag = "data",
    summary = "Run a transform on records posted in the request",
    params(("name" = String, Path, description = "Transform name"), InvokeParams),
    request_body(content = serde_json::Value, description = "A list of JSON values, or of {key, value, headers}"),
    responses((status = 200, description = "{transform, version, outcomes}"), (status = 404, description = "Unknown transform")),
    security(("functions_key" = []), ("bearer" = [])))]
async fn invoke(
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
