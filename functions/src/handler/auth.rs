//! The key check every `/api` route shares: the Functions `x-functions-key`
//! header or `Authorization: Bearer`, compared in constant time; without a
//! valid one the request reaches no handler.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::admin::ApiError;

/// Lets `request` through when it carries `expected`; `closed` is the
/// answer when no key is configured at all.
pub async fn guard(expected: Option<&str>, closed: &str, request: Request, next: Next) -> Response {
    let Some(expected) = expected else {
        return ApiError(StatusCode::UNAUTHORIZED, closed.to_owned()).into_response();
    };
    match presented_key(request.headers()) {
        Some(given) if same(given.as_bytes(), expected.as_bytes()) => next.run(request).await,
        Some(_) => ApiError(StatusCode::UNAUTHORIZED, "wrong key".into()).into_response(),
        None => ApiError(
            StatusCode::UNAUTHORIZED,
            "a key is required: send x-functions-key or Authorization: Bearer".into(),
        )
        .into_response(),
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-functions-key").and_then(|v| v.to_str().ok()) {
        return Some(key);
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
