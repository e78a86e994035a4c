//! Every request in a span of its own (as the consumer skeleton traced its API calls): the
//! caller's `traceparent` is continued (or a trace started), the answer
//! carries the request's `traceparent` back, and one log line per request
//! says what was asked, the status and how long it took, with the trace id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use sluice_host::pipeline::{TRACEPARENT, TraceContext};
use tracing::Instrument;

/// Makes two requests in the same nanosecond still differ.
static REQUESTS: AtomicU64 = AtomicU64::new(0);

pub async fn trace_requests(request: Request, next: Next) -> Response {
    let parent = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = REQUESTS.fetch_add(1, Ordering::Relaxed);
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    // The route's template, so the metric has a bounded number of series.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let context = TraceContext::derive(parent, &format!("{method} {path}\n{nanos}\n{count}"));
    let span = tracing::info_span!(
        "request",
        %method,
        path,
        trace_id = context.trace_id_hex(),
        span_id = context.span_id_hex(),
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    sluice_host::metrics::http_request(&route, response.status().as_u16());
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "request done"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&context.header_value()) {
        response.headers_mut().insert(TRACEPARENT, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use sluice_host::pipeline::{TRACEPARENT, TraceContext};
    use tower::ServiceExt;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    async fn answer_traceparent(incoming: Option<&str>) -> TraceContext {
        let app = Router::new()
            .route("/x", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(super::trace_requests));
        let mut request = Request::get("/x");
        if let Some(value) = incoming {
            request = request.header(TRACEPARENT, value);
        }
        let response = app
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let value = response.headers()[TRACEPARENT].to_str().unwrap();
        TraceContext::parse(value).expect("a valid traceparent")
    }

    #[tokio::test]
    async fn a_callers_trace_goes_on_and_other_requests_start_their_own() {
        let parent = TraceContext::parse(PARENT).unwrap();
        let child = answer_traceparent(Some(PARENT)).await;
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        let first = answer_traceparent(None).await;
        let second = answer_traceparent(Some("not a traceparent")).await;
        assert_ne!(first.trace_id, parent.trace_id);
        assert_ne!(
            first.trace_id, second.trace_id,
            "each request its own trace"
        );
    }
}
