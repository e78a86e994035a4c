//! `GET /metrics`: the Prometheus text exposition of everything the host
//! counts, behind its own key (`SLUICE_METRICS_KEY`) or the admin key, so
//! a scraper needs no power over the registry.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

pub struct MetricsRoute {
    pub handle: PrometheusHandle,
    /// The key a scraper presents (`x-functions-key` or Bearer).
    pub key: Option<String>,
}

impl std::fmt::Debug for MetricsRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRoute")
            .field("key", &self.key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

pub fn routes(metrics: Arc<MetricsRoute>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .layer(middleware::from_fn_with_state(metrics.clone(), require_key))
        .with_state(metrics)
}

async fn render(State(metrics): State<Arc<MetricsRoute>>) -> String {
    metrics.handle.render()
}

async fn require_key(
    State(metrics): State<Arc<MetricsRoute>>,
    request: Request,
    next: Next,
) -> Response {
    let closed = "metrics are closed: set SLUICE_METRICS_KEY or SLUICE_ADMIN_KEY";
    super::auth::guard(metrics.key.as_deref(), None, closed, request, next).await
}
