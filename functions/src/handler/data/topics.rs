//! `GET /api/topics`: the cluster's topics with their partitions' offsets,
//! for the page's topic picker (`sluice_host::kafka::list_topics`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_host::kafka::{MAX_TOPICS, TopicsQuery, check_topic_name, list_topics};
use utoipa::IntoParams;

use super::fetch::fetch_error;
use super::{ApiError, DataApi};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct TopicsParams {
    /// Names containing this text (case-insensitive).
    #[serde(default)]
    contains: Option<String>,
    /// Names after this one: the `next_after` of an earlier answer.
    #[serde(default)]
    after: Option<String>,
    /// Topics per answer (default 100; at most 500).
    #[serde(default)]
    limit: Option<usize>,
    /// Include the cluster's own topics (names starting with `__`).
    #[serde(default)]
    internal: Option<bool>,
}

#[utoipa::path(get, path = "/api/topics", tag = "data",
    summary = "Topics in name order, each with its partitions' first and next offsets",
    params(TopicsParams),
    responses((status = 200, description = "JSON: topics ([{name, partitions: [{partition, low, high}], records}]), matching, limit (the one applied), next_after (null when this is the last page)"),
        (status = 400, description = "A parameter that does not parse, named")),
    security(("functions_key" = []), ("bearer" = [])))]
pub(super) async fn topics_route(
    State(api): State<Arc<DataApi>>,
    params: Result<Query<TopicsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let bad = |message: String| ApiError(StatusCode::BAD_REQUEST, message);
    let Query(params) = params.map_err(|e| bad(e.body_text()))?;
    let limit = params.limit.unwrap_or(100);
    if limit == 0 {
        return Err(bad(format!(
            "`limit`: 0 lists nothing; give 1 to {MAX_TOPICS}"
        )));
    }
    let after = params.after.filter(|a| !a.is_empty());
    if let Some(after) = &after {
        check_topic_name(after).map_err(|e| bad(format!("`after`: {e}")))?;
    }
    let contains = params.contains.unwrap_or_default();
    if contains.len() > 249 {
        return Err(bad(format!(
            "`contains`: {} characters; a topic name has at most 249",
            contains.len()
        )));
    }
    let query = TopicsQuery {
        contains,
        after,
        limit,
        internal: params.internal.unwrap_or(false),
    };
    let readers = api.readers.clone();
    let listed = tokio::task::spawn_blocking(move || list_topics(&readers, &query))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| fetch_error(e.into()))?;
    let topics: Vec<Value> = listed
        .topics
        .iter()
        .map(|topic| {
            let records: i64 = topic.partitions.iter().map(|p| p.high - p.low).sum();
            json!({
                "name": topic.name,
                "partitions": topic.partitions,
                "records": records,
            })
        })
        .collect();
    Ok(Json(json!({
        "topics": topics,
        "matching": listed.matching,
        "limit": listed.limit,
        "next_after": listed.next_after,
    })))
}
