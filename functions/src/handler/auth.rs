//! The check every `/api` route shares: the key, in the Functions
//! `x-functions-key` header or as `Authorization: Bearer`, compared in
//! constant time; or, where configured, an OAuth2 bearer token. Without one
//! of them the request reaches no handler.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::oauth::{OAuth, TokenError, looks_like_jwt};

/// Tokens a group of routes accepts: valid for the provider and, when
/// `role` is set, granting it.
#[derive(Clone)]
pub struct OAuthRule {
    pub verifier: Arc<OAuth>,
    pub role: Option<String>,
}

/// Lets `request` through when it carries the `expected` key or a token
/// `oauth` accepts; `closed` is the answer when neither is configured.
pub async fn guard(
    expected: Option<&str>,
    oauth: Option<&OAuthRule>,
    closed: &str,
    request: Request,
    next: Next,
) -> Response {
    if expected.is_none() && oauth.is_none() {
        return ApiError(StatusCode::UNAUTHORIZED, closed.to_owned()).into_response();
    }
    let denied = |message: String| ApiError(StatusCode::UNAUTHORIZED, message).into_response();
    let Some((given, bearer)) = presented(request.headers()) else {
        let how = if oauth.is_some() {
            "send x-functions-key, or Authorization: Bearer with the key or an OAuth2 token"
        } else {
            "send x-functions-key or Authorization: Bearer"
        };
        return denied(format!("a key is required: {how}"));
    };
    if expected.is_some_and(|key| same(given.as_bytes(), key.as_bytes())) {
        return next.run(request).await;
    }
    match oauth {
        Some(rule) if bearer && looks_like_jwt(given) => {
            match rule.verifier.verify(given, rule.role.as_deref()).await {
                Ok(claims) => {
                    tracing::debug!(subject = claims.sub.as_deref(), "token accepted");
                    next.run(request).await
                }
                Err(error @ TokenError::MissingRole(_)) => {
                    ApiError(StatusCode::FORBIDDEN, error.to_string()).into_response()
                }
                Err(error @ TokenError::Keys(_)) => {
                    tracing::error!(%error, "cannot check OAuth2 tokens");
                    ApiError(StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response()
                }
                Err(error) => denied(error.to_string()),
            }
        }
        _ => denied("wrong key".into()),
    }
}

/// The credential and whether it came as `Authorization: Bearer`.
fn presented(headers: &HeaderMap) -> Option<(&str, bool)> {
    if let Some(key) = headers.get("x-functions-key").and_then(|v| v.to_str().ok()) {
        return Some((key, false));
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| (token.trim(), true))
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
