//! The Azure Functions custom-handler protocol: the Functions host posts
//! `{Data, Metadata}` to `/{FunctionName}` and expects
//! `{Outputs, Logs, ReturnValue}` back. The same router runs standalone.

mod enrich;
mod invocation;
mod kafka_event;
mod timer;

pub use enrich::EnrichConfig;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;

/// What the function app was configured with.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub topics: PathBuf,
    pub connections: PathBuf,
    pub out: Option<String>,
    /// The pipeline behind `POST /Enrich`, if this app runs one.
    pub enrich: Option<EnrichConfig>,
}

/// What the routes share: the configuration and the loaded pipeline.
pub struct AppState {
    pub config: AppConfig,
    enricher: enrich::EnrichSlot,
}

pub fn router(config: AppConfig) -> Router {
    let state = AppState {
        config,
        enricher: Default::default(),
    };
    Router::new()
        .route("/Export", post(timer::export))
        .route("/Enrich", post(enrich::enrich))
        .with_state(Arc::new(state))
}

#[cfg(test)]
mod tests;
