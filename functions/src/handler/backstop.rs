//! The last line of defence: a panic in a route (a bug; no input should
//! cause one) answers 500 with a message and is logged with the request's
//! trace id, instead of dropping the connection.

use std::any::Any;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;

/// What the body of a backstop answer says, so tests can tell it apart.
pub const PANIC_MESSAGE: &str = "internal error: the request hit a bug in Sluice";

pub fn layer() -> CatchPanicLayer<fn(Box<dyn Any + Send>) -> Response> {
    CatchPanicLayer::custom(answer as fn(Box<dyn Any + Send>) -> Response)
}

/// Runs inside the request's span (the tracing layer wraps this one), so
/// the error line carries the trace id.
fn answer(panic: Box<dyn Any + Send>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "a route panicked; answered 500");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": PANIC_MESSAGE})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_route_answers_500_with_a_message_and_a_trace() {
        async fn boom() -> &'static str {
            panic!("a bug")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(super::layer())
            .layer(axum::middleware::from_fn(
                super::super::request_trace::trace_requests,
            ));
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().contains_key("traceparent"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], super::PANIC_MESSAGE);
    }
}
