//! The Prometheus recorder behind `sluice_host::metrics`, and `/metrics`:
//! on its own listener for `sluice enrich --metrics-addr`, or as a route of
//! `sluice serve` behind a key.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process's recorder, installed on first use.
pub fn handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    // Buckets make histograms true Prometheus histograms (aggregatable
    // across workers), not per-process summaries: from half a millisecond
    // (a small guest batch) to a minute (a large export).
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0,
        ])
        .context("metric buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let upkeep = handle.clone();
    // Histograms are summarised by upkeep; without it they only grow.
    sluice_host::io::handle().spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Serves `GET /metrics` on `addr` in the background (the enrichment
/// worker has no HTTP server of its own).
pub fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let handle = handle()?;
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("listening for metrics scrapes on {addr}"))?;
    listener.set_nonblocking(true).context("metrics listener")?;
    let app = Router::new().route("/metrics", get(move || async move { handle.render() }));
    sluice_host::io::handle().spawn(async move {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                if let Err(error) = axum::serve(listener, app).await {
                    tracing::error!(%error, "the metrics endpoint stopped");
                }
            }
            Err(error) => tracing::error!(%error, "the metrics endpoint could not start"),
        }
    });
    tracing::info!(%addr, "serving metrics at /metrics");
    Ok(())
}
