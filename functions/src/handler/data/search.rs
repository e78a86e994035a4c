//! `GET /api/search`: the query to `sluice_host::search::search`, the
//! answer as JSON with why it stopped and the cursor to go on. Every
//! problem with the query (a filter that does not parse names its
//! position) is a 400 naming the parameter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_host::codec::SchemaRegistry;
use sluice_host::search::{
    Cursor, KeyForm, KeySearch, Order, Partitioner, SearchHow, SearchLimits, SearchQuery, search,
};
use utoipa::IntoParams;

use super::fetch::fetch_error;
use super::query::{millis_of, numbers};
use super::{ApiError, DataApi};
use crate::render::{mark_source, record_json, show_key_as};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SearchParams {
    pub(super) topic: String,
    /// Records whose key is exactly this text; only the partitions the
    /// producer's partitioner chose for it are read.
    #[serde(default)]
    key: Option<String>,
    /// Records whose key is exactly these bytes, in hex (`000000000000002a`):
    /// keys that are not text (an integer, an Avro record). Each record of
    /// the answer shows its key in hex too, as `key_hex`.
    #[serde(default)]
    key_hex: Option<String>,
    /// The same in base64 (standard or URL-safe, padded or not; a `+` that
    /// arrives as a space is read as `+`); the answer's records carry
    /// `key_base64`.
    #[serde(default)]
    key_base64: Option<String>,
    /// With a key: the producer's partitioners, comma-separated, by the
    /// names librdkafka's `partitioner` setting takes: murmur2 and
    /// murmur2_random (Java clients), consistent and consistent_random
    /// (librdkafka's default), fnv1a and fnv1a_random (Sarama's hash).
    /// Default: murmur2,consistent_random.
    #[serde(default)]
    partitioner: Option<String>,
    /// With a key: read every partition (a producer with a partitioner of
    /// its own, or partitions added since).
    #[serde(default)]
    all_partitions: Option<bool>,
    /// One partition or a comma-separated list; every one when absent.
    #[serde(default)]
    partition: Option<String>,
    /// With `partition`: where each partition's search starts, one offset
    /// for every partition or one per partition (oldest first; the first
    /// stored offset when it is below it).
    #[serde(default)]
    offset: Option<String>,
    /// A filter on the record, e.g. `value.country == "NO" and headers.source contains "web"`.
    #[serde(default, rename = "where")]
    filter: Option<String>,
    /// Records at or after this time, epoch milliseconds or RFC 3339.
    #[serde(default)]
    from_timestamp: Option<String>,
    /// `oldest` (default) or `newest`: each partition read backwards from its end.
    #[serde(default)]
    order: Option<String>,
    /// Matches returned, at most (default 100; the server's fetch limit caps
    /// it). A download: matches in the whole file (default: no limit but
    /// the budgets).
    #[serde(default)]
    pub(super) limit: Option<u64>,
    /// Records looked at, at most (lower than the server's budget).
    #[serde(default)]
    max_scanned: Option<u64>,
    /// Seconds the search may take (lower than the server's limit); it stops
    /// an answer once it has looked at a record.
    #[serde(default)]
    max_seconds: Option<f64>,
    /// The `cursor` of an earlier answer, to go on where it stopped (with
    /// the same key, filter and time).
    #[serde(default)]
    cursor: Option<String>,
    /// `avro` decodes Confluent-framed Avro values before the filter sees them.
    #[serde(default)]
    value_format: Option<String>,
    /// `/api/search` answers JSON; `/api/search/download` streams `csv`,
    /// `ndjson` (the default) or `parquet`.
    #[serde(default)]
    pub(super) format: Option<String>,
}

fn bad(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message)
}

fn given(text: &Option<String>) -> Option<String> {
    text.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The key asked for and how it is written: `key`, `key_hex` or
/// `key_base64`, one at most.
fn key_of(params: &SearchParams) -> Result<Option<(Vec<u8>, KeyForm)>, ApiError> {
    let mut asked = [
        ("key", KeyForm::Text, &params.key),
        ("key_hex", KeyForm::Hex, &params.key_hex),
        ("key_base64", KeyForm::Base64, &params.key_base64),
    ]
    .into_iter()
    .filter_map(|(name, form, text)| given(text).map(|text| (name, form, text)));
    let Some((name, form, text)) = asked.next() else {
        return Ok(None);
    };
    if let Some((other, _, _)) = asked.next() {
        return Err(bad(format!("`{name}` and `{other}`: give the key once")));
    }
    let key = form
        .decode(&text)
        .map_err(|e| bad(format!("`{name}`: {e}")))?;
    Ok(Some((key, form)))
}

/// The search asked for, and how its key was written.
pub(super) fn query_of(params: &SearchParams) -> Result<(SearchQuery, Option<KeyForm>), ApiError> {
    let asked_key = key_of(params)?;
    let key_form = asked_key.as_ref().map(|(_, form)| *form);
    let key = match asked_key {
        None => None,
        Some((key, _)) => Some(KeySearch {
            key,
            partitioners: match given(&params.partitioner) {
                None => Partitioner::DEFAULT.to_vec(),
                Some(names) => names
                    .split(',')
                    .map(|name| name.parse().map_err(|e| bad(format!("`partitioner`: {e}"))))
                    .collect::<Result<_, _>>()?,
            },
            all_partitions: params.all_partitions.unwrap_or(false),
        }),
    };
    let filter = match given(&params.filter) {
        None => None,
        Some(text) => Some(text.parse().map_err(|e| bad(format!("`where`: {e}")))?),
    };
    let order = match params.order.as_deref().map(str::trim) {
        None | Some("" | "oldest") => Order::OldestFirst,
        Some("newest") => Order::NewestFirst,
        Some(other) => {
            return Err(bad(format!(
                "`order`: `{other}` is not one of oldest, newest"
            )));
        }
    };
    let partitions = match params.partition.as_deref() {
        Some(text) if !text.trim().is_empty() => numbers("partition", Some(text), 0)?,
        _ => Vec::new(),
    };
    let cursor = match (given(&params.cursor), given(&params.offset)) {
        (None, None) => None,
        (Some(text), None) => Some(
            text.parse::<Cursor>()
                .map_err(|e| bad(format!("`cursor`: {e}")))?,
        ),
        (Some(_), Some(_)) => {
            return Err(bad(
                "give `offset` or `cursor`, not both: a cursor knows where each partition goes on"
                    .into(),
            ));
        }
        (None, Some(offsets)) => Some(start_at(&partitions, &offsets, params, order)?),
    };
    let max_time = match params.max_seconds {
        None => None,
        Some(seconds) => Some(
            Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|_| seconds > 0.0)
                .ok_or_else(|| {
                    bad(format!(
                        "`max_seconds`: `{seconds}` is not a positive number of seconds"
                    ))
                })?,
        ),
    };
    let query = SearchQuery {
        topic: params.topic.clone(),
        partitions,
        key,
        filter,
        from_timestamp: match given(&params.from_timestamp) {
            Some(time) => Some(millis_of(&time)?),
            None => None,
        },
        order,
        cursor,
        limit: params.limit.unwrap_or(100),
        max_scanned: params.max_scanned,
        max_time,
    };
    Ok((query, key_form))
}

/// Where an ascending search starts given `offset`: what is left of each
/// partition from there, as a cursor would say it (its end is the
/// partition's, clamped when the search reads it).
fn start_at(
    partitions: &[i32],
    offsets: &str,
    params: &SearchParams,
    order: Order,
) -> Result<Cursor, ApiError> {
    if partitions.is_empty() {
        return Err(bad(
            "`offset` needs `partition`: the partitions the offsets are in".into(),
        ));
    }
    if order == Order::NewestFirst {
        return Err(bad(
            "`offset` starts an oldest-first search; `order=newest` starts at the end".into(),
        ));
    }
    if params
        .from_timestamp
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty())
    {
        return Err(bad("give `offset` or `from_timestamp`, not both".into()));
    }
    let offsets: Vec<i64> = numbers("offset", Some(offsets), 0)?;
    if offsets.len() != 1 && offsets.len() != partitions.len() {
        return Err(bad(format!(
            "`offset` has {} values for {} partitions: give one, or one per partition",
            offsets.len(),
            partitions.len()
        )));
    }
    let mut left = BTreeMap::new();
    for (i, partition) in partitions.iter().enumerate() {
        let offset = *offsets.get(i).or(offsets.first()).unwrap_or(&0);
        if offset < 0 {
            return Err(bad(format!("`offset`: {offset} is below 0")));
        }
        left.insert(*partition, (offset, i64::MAX));
    }
    Ok(Cursor {
        order: Order::OldestFirst,
        left,
    })
}

/// The schema registry when `value_format=avro` asks for it.
pub(super) fn avro_of(
    api: &DataApi,
    params: &SearchParams,
) -> Result<Option<Arc<SchemaRegistry>>, ApiError> {
    match params.value_format.as_deref() {
        None | Some("" | "json" | "raw") => Ok(None),
        Some("avro") => Ok(Some(api.schema_registry.clone().ok_or_else(|| {
            bad(
                "`value_format=avro` needs a schema registry: set SLUICE_SCHEMA_REGISTRY_URL"
                    .into(),
            )
        })?)),
        Some(other) => Err(bad(format!(
            "`value_format`: `{other}` is not one of json, raw, avro"
        ))),
    }
}

/// A search's bounds: the fetch's limits hold for a search's answer too.
pub(super) fn limits_of(api: &DataApi) -> SearchLimits {
    SearchLimits {
        max_time: api.limits.max_time,
        max_matches: api.limits.max_count,
        max_bytes: api.limits.max_bytes,
        ..SearchLimits::default()
    }
}

#[utoipa::path(get, path = "/api/search", tag = "data",
    summary = "Records found by key, content or time, oldest or newest first, within a budget",
    params(SearchParams),
    responses((status = 200, description = "JSON: records (each with matched_by for a key search, and key_hex or key_base64 when the key was asked so; \"source\": \"lake\" when read from the export below the partition's earliest offset), missing (offsets below the earliest the export does not hold, with the reason), scanned, complete, stopped_by (limit, records, time or bytes), next_offsets, cursor (pass it back to go on; null when complete), partitions read, key_partitions"),
        (status = 400, description = "A parameter that does not parse; a filter's error names its position and token"),
        (status = 404, description = "Unknown topic or partition"),
        (status = 502, description = "The export's storage holds a file or log entry no export wrote"),
        (status = 503, description = "The schema registry cannot be asked (value_format=avro cannot decode now), or the export's storage cannot be read (offsets below a partition's earliest)")),
    security(("functions_key" = []), ("bearer" = [])))]
pub(super) async fn search_route(
    State(api): State<Arc<DataApi>>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|e| bad(e.body_text()))?;
    if let Some(format) = params
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "json")
    {
        return Err(bad(format!(
            "`format`: `{format}` is not json: /api/search answers JSON; /api/search/download streams csv, ndjson or parquet"
        )));
    }
    let (query, key_form) = query_of(&params)?;
    let avro = avro_of(&api, &params)?;
    let limits = limits_of(&api);
    let readers = api.readers.clone();
    let lake = api.lake.clone();
    let (query, searched) = tokio::task::spawn_blocking(move || {
        let searched =
            search(&readers, &query, &limits, &SearchHow { avro, lake }).map_err(fetch_error)?;
        Ok::<_, ApiError>((query, searched))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let records: Vec<Value> = searched
        .records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let mut line = record_json(record, None);
            mark_source(&mut line, searched.sources.get(i));
            if let Some(by) = searched.matched_by.get(i) {
                line["matched_by"] = json!(by);
            }
            if let Some(form) = key_form {
                show_key_as(&mut line, record.key.as_deref(), form);
            }
            line
        })
        .collect();
    let next: BTreeMap<String, i64> = searched
        .next_offsets()
        .into_iter()
        .map(|(p, o)| (p.to_string(), o))
        .collect();
    let key_partitions: BTreeMap<&str, i32> = searched
        .key_partitions
        .iter()
        .map(|(partitioner, p)| (partitioner.name(), *p))
        .collect();
    let complete = searched.cursor.is_none();
    Ok(Json(json!({
        "topic": query.topic,
        "order": searched.order,
        "returned": records.len(),
        "records": records,
        "missing": searched.missing,
        "scanned": searched.scanned,
        "complete": complete,
        "stopped_by": searched.stopped_by,
        "next_offsets": next,
        "cursor": searched.cursor.as_ref().map(ToString::to_string),
        "partitions": searched.partitions,
        "key_partitions": key_partitions,
        "note": if complete { "every record of the partitions searched was looked at" } else { "the search stopped before the end: ask again with the same parameters and this cursor" },
    })))
}
