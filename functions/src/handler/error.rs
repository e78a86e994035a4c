//! Errors as the HTTP API answers them: a status and `{"error": message}`,
//! from the host's typed errors.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_host::registry::RegistryError;
use sluice_host::transforms::SourceError;

/// An error as the API answers it: a status and `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        let status = match &error {
            e if e.is_not_found() => StatusCode::NOT_FOUND,
            RegistryError::DeleteActive { .. }
            | RegistryError::ShadowIsActive { .. }
            | RegistryError::Conflict { .. } => StatusCode::CONFLICT,
            RegistryError::ShadowWorld { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            RegistryError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RegistryError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            e if e.is_client_error() => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(%error, "admin request failed");
        }
        ApiError(status, error.to_string())
    }
}

impl From<SourceError> for ApiError {
    fn from(error: SourceError) -> Self {
        let status = if error.is_not_found() {
            StatusCode::NOT_FOUND
        } else if error.is_client_error() {
            StatusCode::BAD_REQUEST
        } else {
            tracing::error!(%error, "loading a transform failed");
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError(status, error.to_string())
    }
}
