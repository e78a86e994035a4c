//! A fetch request's query string, checked: partitions, offsets or a time,
//! count, output format, transform and value format. Every problem is a
//! 400 naming the parameter.

use axum::http::StatusCode;
use serde::Deserialize;
use sluice_host::fetch::FetchQuery;
use sluice_host::kafka::Start;
use utoipa::IntoParams;

use super::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct FetchParams {
    pub(super) topic: String,
    /// One partition or a comma-separated list.
    #[serde(default)]
    pub(super) partition: Option<String>,
    /// One offset for every partition, or one per partition.
    #[serde(default)]
    pub(super) offset: Option<String>,
    /// Instead of offsets: start at the first record at or after this time,
    /// Unix epoch milliseconds or RFC 3339 (`2026-11-22T01:00:00Z`).
    #[serde(default)]
    pub(super) from_timestamp: Option<String>,
    #[serde(default)]
    pub(super) count: Option<u64>,
    /// json (default), ndjson, csv or parquet; else the Accept header.
    #[serde(default)]
    pub(super) format: Option<String>,
    /// A transform to dry-run on the records.
    #[serde(default)]
    pub(super) transform: Option<String>,
    /// With `transform`: a version (prefix) instead of the active one.
    #[serde(default)]
    pub(super) version: Option<String>,
    /// `avro` decodes Confluent-framed Avro through the schema registry;
    /// otherwise values are shown as stored (JSON or text).
    #[serde(default)]
    pub(super) value_format: Option<String>,
}

pub(super) fn numbers<T: std::str::FromStr>(
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

pub(super) fn query_of(params: &FetchParams) -> Result<FetchQuery, ApiError> {
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
pub(super) fn millis_of(time: &str) -> Result<i64, ApiError> {
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
pub(super) enum Format {
    Json,
    NdJson,
    Csv,
    Parquet,
}

pub(super) fn format_of(params: &FetchParams, accept: Option<&str>) -> Result<Format, ApiError> {
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

/// Whether values are to be decoded as Confluent Avro (`value_format`).
pub(super) fn wants_avro(params: &FetchParams) -> Result<bool, ApiError> {
    match params.value_format.as_deref() {
        None | Some("" | "json" | "raw") => Ok(false),
        Some("avro") => Ok(true),
        Some(other) => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("`value_format`: `{other}` is not one of json, raw, avro"),
        )),
    }
}
