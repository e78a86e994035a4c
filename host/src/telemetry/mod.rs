//! Spans for a tracing backend, through the OpenTelemetry API: an HTTP
//! request, an enrichment step with its guest calls and its produce, a
//! record processed, an export of a topic. The library records them with
//! the ids Sluice derives itself (`pipeline::TraceContext`), so the spans a
//! collector receives are the ones the records' `traceparent` headers
//! name. Until the binary installs an exporter (`enable`), nothing is built.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue, global};

mod trace;

pub use trace::{TRACEPARENT, TraceContext};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Spans are recorded from now on (the binary installed a tracer provider).
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Whether spans are recorded: callers skip the work of describing one.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

thread_local! {
    /// The ids the next span built on this thread takes (see [`DerivedIds`]).
    static NEXT: Cell<Option<([u8; 16], [u8; 8])>> = const { Cell::new(None) };
}

/// The SDK's id generator for Sluice: a span gets the ids [`record`] set
/// for it (derived from the record's coordinates, or the request), so the
/// span a collector receives is the one the `traceparent` headers name;
/// any other span gets random ones. Install it with the tracer provider.
#[derive(Debug, Default)]
pub struct DerivedIds;

impl opentelemetry_sdk::trace::IdGenerator for DerivedIds {
    fn new_trace_id(&self) -> TraceId {
        match NEXT.with(Cell::get) {
            Some((trace, _)) => TraceId::from_bytes(trace),
            None => opentelemetry_sdk::trace::RandomIdGenerator::default().new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match NEXT.with(Cell::get) {
            Some((_, span)) => SpanId::from_bytes(span),
            None => opentelemetry_sdk::trace::RandomIdGenerator::default().new_span_id(),
        }
    }
}

/// A span that happened: its ids, its parent's, when, and what it did.
pub struct Span<'a> {
    pub name: String,
    pub context: TraceContext,
    pub parent: Option<TraceContext>,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    /// Set when it failed; the text is the span's status message.
    pub error: Option<&'a str>,
}

pub fn record(span: Span<'_>) {
    if !enabled() {
        return;
    }
    let tracer = global::tracer("sluice");
    let builder = tracer
        .span_builder(span.name)
        .with_kind(span.kind)
        .with_start_time(span.start)
        .with_attributes(span.attributes);
    let parent = match span.parent {
        Some(parent) => Context::new().with_remote_span_context(span_context(&parent)),
        None => Context::new(),
    };
    // Building is synchronous on this thread: the generator reads these.
    NEXT.with(|next| next.set(Some((span.context.trace_id, span.context.span_id))));
    let mut built = tracer.build_with_context(builder, &parent);
    NEXT.with(|next| next.set(None));
    if let Some(error) = span.error {
        use opentelemetry::trace::Span as _;
        built.set_status(opentelemetry::trace::Status::error(error.to_owned()));
    }
    opentelemetry::trace::Span::end_with_timestamp(&mut built, span.end);
}

fn span_context(context: &TraceContext) -> SpanContext {
    let flags = if context.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(
        TraceId::from_bytes(context.trace_id),
        SpanId::from_bytes(context.span_id),
        flags,
        true,
        TraceState::default(),
    )
}
