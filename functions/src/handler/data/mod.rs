//! The data API under `/api`: `GET /api/fetch` (records at offsets, with an
//! optional dry run of a transform), `GET /api/search` (records found by
//! key, content or time, within a budget, with a cursor to go on),
//! `GET /api/search/download` (a search's whole result as one streamed
//! file), `GET /api/topics` (topics with their offsets, for the page's
//! picker) and `POST /api/transforms/{name}/invoke`
//! (a transform on records posted in the request: the on-demand API),
//! plus the fetch page at `/`. Reads reach only the configured cluster;
//! every request but the page's needs the API key (checked by `auth.rs`). `query.rs` turns a request into a
//! fetch, `fetch.rs` runs it and renders the answer, `search.rs` is the
//! search's query and answer, `download.rs` streams a search's pages into
//! one file, `topics.rs` lists topics, `invoke.rs` runs a
//! transform on posted records.

mod download;
mod fetch;
mod invoke;
mod query;
mod search;
mod topics;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use sluice_host::codec::SchemaRegistry;
use sluice_host::fetch::FetchLimits;
use sluice_host::kafka::ReaderPool;
use sluice_host::lake::Lake;
use sluice_host::runtime::Transform;
use sluice_host::transforms::TransformSource;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;

pub struct DataApi {
    /// Connected consumers for fetches from the configured cluster.
    pub readers: Arc<ReaderPool>,
    pub limits: FetchLimits,
    /// Where named transforms come from: the registry, or a folder.
    pub transforms: Arc<TransformSource>,
    /// For `value_format=avro`.
    pub schema_registry: Option<Arc<SchemaRegistry>>,
    /// Where the export puts topics (the app's topics.json and storage):
    /// offsets below a partition's earliest are read from there.
    pub lake: Option<Arc<Lake>>,
}

impl std::fmt::Debug for DataApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataApi")
            .field("brokers", &self.readers.config().bootstrap_servers)
            .field("transforms", &self.transforms.describe())
            .finish()
    }
}

/// The API routes (documented) and the page (not part of the API).
pub fn routes(api: Arc<DataApi>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(fetch::fetch_route))
        .routes(routes!(search::search_route))
        .routes(routes!(download::download_route))
        .routes(routes!(topics::topics_route))
        .routes(routes!(invoke::invoke))
        .with_state(api)
        .route("/", get(page))
}

async fn page() -> Html<&'static str> {
    Html(include_str!("../page.html"))
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
