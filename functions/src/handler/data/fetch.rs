//! `GET /api/fetch`: the query to `sluice_host::fetch`, the answer
//! rendered as JSON (with whether it is complete), NDJSON, CSV or Parquet.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::json;
use sluice_host::fetch::{Fetch, FetchError, fetch};
use sluice_host::kafka::KafkaError;
use sluice_host::lake::LakeError;

use super::query::{self, FetchParams, Format, format_of, query_of};
use super::{ApiError, DataApi, load_transform};
use crate::render::{mark_source, record_json};

/// Where a limited fetch goes on, for every format (NDJSON, CSV and
/// Parquet have no envelope to say it in): `partition=offset` pairs.
const NEXT_OFFSETS_HEADER: &str = "x-sluice-next-offsets";

/// `0=120,3=45`: the next offset of each partition a limit stopped.
fn next_offsets_header(next: &BTreeMap<i32, i64>) -> String {
    next.iter()
        .map(|(partition, offset)| format!("{partition}={offset}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn fetch_error(error: FetchError) -> ApiError {
    let error = match error {
        FetchError::Kafka(error) => error,
        FetchError::DryRun(error) => {
            return ApiError(StatusCode::UNPROCESSABLE_ENTITY, error.to_string());
        }
        // Not the records' fault, nor the caller's: try again later.
        error @ (FetchError::SchemaRegistry(_)
        | FetchError::Lake(LakeError::Unavailable { .. } | LakeError::NoAnswer { .. })) => {
            return ApiError(StatusCode::SERVICE_UNAVAILABLE, error.to_string());
        }
        // The export's storage holds something no export wrote.
        error @ FetchError::Lake(LakeError::Unreadable { .. }) => {
            return ApiError(StatusCode::BAD_GATEWAY, error.to_string());
        }
    };
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

#[utoipa::path(get, path = "/api/fetch", tag = "data",
    summary = "Records at offsets, optionally with a transform's dry-run outcome",
    params(FetchParams),
    responses((status = 200, description = "JSON (records, complete, limited_by, next_offsets, missing), NDJSON, CSV or Parquet; a limited read says which limit in x-sluice-limited-by and where to go on in x-sluice-next-offsets (partition=offset,...). An exported topic's offsets below a partition's earliest are read from the export: each such record has \"source\": \"lake\" (JSON, NDJSON), and `missing` lists the offsets below the earliest the export does not hold, with the reason"),
        (status = 404, description = "Unknown topic, partition or transform"),
        (status = 416, description = "Offset outside the partition; the message gives the range"),
        (status = 502, description = "The export's storage holds a file or log entry no export wrote"),
        (status = 503, description = "The schema registry cannot be asked (value_format=avro cannot decode now), or the export's storage cannot be read (offsets below a partition's earliest)")),
    security(("functions_key" = []), ("bearer" = [])))]
pub(super) async fn fetch_route(
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
    let avro = if query::wants_avro(&params)? {
        Some(api.schema_registry.clone().ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "`value_format=avro` needs a schema registry: set SLUICE_SCHEMA_REGISTRY_URL"
                    .into(),
            )
        })?)
    } else {
        None
    };
    let how = Fetch {
        avro,
        dry_run: transform,
        lake: api.lake.clone(),
    };
    let (readers, limits) = (api.readers.clone(), api.limits);
    let read = tokio::task::spawn_blocking(move || {
        let fetched = fetch(&readers, &query, &limits, &how).map_err(fetch_error)?;
        Ok::<_, ApiError>((query, fetched))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (query, fetched) = read?;
    let outcomes = &fetched.outcomes;
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
            let next: BTreeMap<String, i64> = fetched
                .next_offsets
                .iter()
                .map(|(p, o)| (p.to_string(), *o))
                .collect();
            let value = json!({
                "topic": query.topic,
                "records": records.iter().enumerate().map(|(i, r)| {
                    let mut line = record_json(r, outcomes.as_ref().and_then(|o| o.get(i)));
                    mark_source(&mut line, fetched.sources.get(i));
                    line
                }).collect::<Vec<_>>(),
                "missing": fetched.missing,
                "returned": records.len(),
                "complete": end_reached,
                "limited_by": fetched.limited_by,
                "range_ends": ends,
                "next_offsets": next,
                "note": if end_reached { "every requested record that exists was returned; a read never waits past the partition's end" } else { "a limit stopped the read; ask again for the partitions and offsets in next_offsets" },
            });
            ("application/json", value.to_string().into_bytes())
        }
        Format::NdJson => (
            "application/x-ndjson",
            body_of(&|out| {
                crate::render::write_json_lines(records, outcomes.as_deref(), &fetched.sources, out)
                    .map_err(Into::into)
            })?,
        ),
        Format::Csv => (
            "text/csv; charset=utf-8",
            body_of(&|out| crate::render::write_csv(records, out).map_err(Into::into))?,
        ),
        Format::Parquet => (
            "application/vnd.apache.parquet",
            body_of(&|out| crate::render::write_parquet(records, out))?,
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
    if !fetched.next_offsets.is_empty()
        && let Ok(value) =
            header::HeaderValue::from_str(&next_offsets_header(&fetched.next_offsets))
    {
        response.headers_mut().insert(NEXT_OFFSETS_HEADER, value);
    }
    Ok(response)
}
