//! The Azure Functions custom-handler protocol: the Functions host posts
//! `{Data, Metadata}` to `/{FunctionName}` and expects
//! `{Outputs, Logs, ReturnValue}` back. The same router runs standalone.

mod invocation;
mod timer;

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
}

pub fn router(config: AppConfig) -> Router {
    Router::new()
        .route("/Export", post(timer::export))
        .with_state(Arc::new(config))
}

#[cfg(test)]
mod tests;
