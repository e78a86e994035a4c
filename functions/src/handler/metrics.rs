//! `GET /metrics`: the Prometheus text exposition of everything the host
//! counts, behind its own key (`SLUICE_METRICS_KEY`) or the admin key
//! (checked by `auth.rs`), so a scraper needs no power over the registry.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

pub struct MetricsRoute {
    pub handle: PrometheusHandle,
}

impl std::fmt::Debug for MetricsRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRoute").finish_non_exhaustive()
    }
}

pub fn routes(metrics: Arc<MetricsRoute>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(metrics)
}

async fn render(State(metrics): State<Arc<MetricsRoute>>) -> String {
    metrics.handle.render()
}
