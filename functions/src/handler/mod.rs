//! The Azure Functions custom-handler protocol: the Functions host posts
//! `{Data, Metadata}` to `/{FunctionName}` and expects
//! `{Outputs, Logs, ReturnValue}` back. The same router runs standalone
//! and under AWS Lambda; one layer (`auth.rs`) decides who may call which
//! route.

pub mod admin;
mod auth;
pub mod backstop;
pub mod data;
mod enrich;
mod error;
mod invocation;
mod kafka_event;
pub mod metrics;
pub mod oauth;
mod openapi;
mod request_trace;
mod timer;

pub use auth::{Access, AccessKey, OAuthRule, Platform, PlatformEvent};
pub use enrich::EnrichConfig;
pub use invocation::PayloadLimit;

use std::path::PathBuf;
use std::sync::Arc;

use sluice_host::transforms::TransformSource;

use axum::Json;
use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// What the function app was configured with.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub topics: PathBuf,
    pub connections: PathBuf,
    pub out: Option<String>,
    /// The pipeline behind `POST /Enrich`, if this app runs one.
    pub enrich: Option<EnrichConfig>,
    /// The registry behind the admin API, if this app serves one.
    pub admin: Option<Arc<admin::Admin>>,
    /// The fetch and invoke API and the fetch page, if this app serves them.
    pub data: Option<Arc<data::DataApi>>,
    /// Where every route finds named transforms (the fetch's dry run, the
    /// trigger's pipeline, the export's aggregators).
    pub transforms: Arc<TransformSource>,
    /// `/metrics`, when the app serves it.
    pub metrics: Option<Arc<metrics::MetricsRoute>>,
    /// Who may call which route.
    pub access: Arc<Access>,
    /// The largest payload the custom-handler routes read.
    pub payload_limit: PayloadLimit,
}

/// What the routes share: the configuration, the loaded pipeline and the
/// export that is running, if one is.
pub struct AppState {
    pub config: AppConfig,
    enricher: enrich::EnrichSlot,
    export: timer::ExportSlot,
}

pub fn router(config: AppConfig) -> Router {
    let mut api = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi());
    if let Some(admin) = config.admin.clone() {
        api = api.merge(admin::routes(admin));
    }
    if let Some(data) = config.data.clone() {
        api = api.merge(data::routes(data));
    }
    let topology_page = config.admin.is_some();
    let metrics_routes = config.metrics.clone().map(metrics::routes);
    let (api, document) = api.split_for_parts();
    let access = config.access.clone();
    let state = AppState {
        config,
        enricher: Default::default(),
        export: Default::default(),
    };
    let app = Router::new()
        .route("/Export", post(timer::export))
        .route("/events", post(timer::scheduled))
        .route("/Enrich", post(enrich::enrich))
        .with_state(Arc::new(state))
        .merge(api)
        .route(
            "/api/openapi.json",
            get(move || async move { Json(document) }),
        )
        .route("/api/docs", get(openapi::swagger_ui));
    let app = match metrics_routes {
        Some(routes) => app.merge(routes),
        None => app,
    };
    let app = if topology_page {
        // The page asks for the admin key itself; it holds no data.
        app.route(
            "/topology",
            get(|| async { Html(include_str!("topology.html")) }),
        )
    } else {
        app
    };
    // Every route, whatever group it came from, behind the one check.
    app.route_layer(axum::middleware::from_fn_with_state(
        access,
        auth::authenticate,
    ))
    .layer(backstop::layer())
    .layer(axum::middleware::from_fn(request_trace::trace_requests))
}

#[cfg(test)]
mod tests;
