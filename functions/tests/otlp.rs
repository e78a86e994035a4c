//! Spans over OTLP/HTTP to a small receiver started by the test: an HTTP
//! request to `sluice serve` becomes a span that continues the caller's
//! trace, with the ids the answer's `traceparent` names; a record through
//! `sluice enrich` becomes the span its output's `traceparent` names.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_host::kafka::ensure_topic;
use sluice_tests::{broker, fresh_topic, guests_dir, header_text, produce_to, read_all};

/// Accepts OTLP/HTTP JSON posts on a free port; every span received.
fn receiver() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = spans.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(document) = serde_json::from_slice::<Value>(&body)
            {
                let mut kept = kept.lock().unwrap();
                for resource in document["resourceSpans"].as_array().into_iter().flatten() {
                    for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                        kept.extend(scope["spans"].as_array().into_iter().flatten().cloned());
                    }
                }
            }
            let _ = (&stream).write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    (port, spans)
}

fn with_otlp(command: &mut Command, port: u16) -> &mut Command {
    command
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
}

fn wait_for_span(spans: &Mutex<Vec<Value>>, found: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let Some(span) = spans.lock().unwrap().iter().find(|s| found(s)) {
            return span.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no such span arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

const KEY: &str = "otlp-key-0123456789abcdef0123456789a";

#[test]
fn a_request_is_a_span_that_continues_the_callers_trace() {
    let (otlp, spans) = receiver();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let server = with_otlp(&mut Command::new(env!("CARGO_BIN_EXE_sluice")), otlp)
        .args(["serve", "--port", &port.to_string(), "--api-key", KEY])
        .current_dir(dir.path())
        .env("SLUICE_KAFKA_BROKERS", broker().bootstrap_servers)
        .env("SLUICE_TRANSFORMS_DIR", guests_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let start = Instant::now();
    let answer = loop {
        match sluice_tests::http::request(
            port,
            "GET",
            "/api/fetch?topic=nothing-here",
            &[("traceparent", caller), ("x-functions-key", KEY)],
            &[],
        ) {
            Some(answer) => break answer,
            None => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the server did not start"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let ours = answer
        .header("traceparent")
        .expect("the answer's traceparent")
        .to_owned();
    let span_id = ours.split('-').nth(2).unwrap().to_owned();
    let span = wait_for_span(&spans, |s| s["spanId"] == span_id.as_str());
    stop(server);
    assert_eq!(span["traceId"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(span["parentSpanId"], "b7ad6b7169203331");
    assert_eq!(span["name"], "GET /api/fetch");
}

#[test]
fn a_record_processed_is_the_span_its_outputs_traceparent_names() {
    let (otlp, spans) = receiver();
    let config = broker();
    let (input, output, dead_letter) = (
        fresh_topic("otlp-in"),
        fresh_topic("otlp-out"),
        fresh_topic("otlp-dlq"),
    );
    for topic in [&input, &output, &dead_letter] {
        ensure_topic(&config, topic, 1).unwrap();
    }
    produce_to(&config, &input, 0, &[json!({"i": 1}).to_string()]);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("pipeline.json");
    let definition = json!({
        "name": fresh_topic("otlp"), "inputs": [input], "outputs": [output],
        "dead_letter": dead_letter, "transform": "misbehave",
    });
    std::fs::write(&pipeline, definition.to_string()).unwrap();
    let worker = with_otlp(&mut Command::new(env!("CARGO_BIN_EXE_sluice")), otlp)
        .args(["enrich", "--pipeline"])
        .arg(&pipeline)
        .env("SLUICE_KAFKA_BROKERS", &config.bootstrap_servers)
        .env("SLUICE_TRANSFORMS_DIR", guests_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let out = loop {
        if let Some(record) = read_all(&config, &output).pop() {
            break record;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no output");
        std::thread::sleep(Duration::from_millis(200));
    };
    let traceparent = header_text(&out, "traceparent").to_owned();
    let mut parts = traceparent.split('-').skip(1);
    let (trace_id, span_id) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
    );
    let span = wait_for_span(&spans, |s| s["spanId"] == span_id.as_str());
    assert_eq!(span["traceId"], trace_id.as_str());
    assert!(
        span["name"]
            .as_str()
            .unwrap()
            .starts_with("process misbehave@"),
        "{span}"
    );
    wait_for_span(&spans, |s| s["name"] == "produce");
    stop(worker);
}
