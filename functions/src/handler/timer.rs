//! `POST /Export`: the timer-triggered export. A past-due run runs once,
//! like any other; the answer is non-2xx when any topic failed, so the
//! Functions host records the invocation as failed.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::invocation::{InvocationRequest, InvocationResponse, decoded, flag};
use sluice_host::config::{Connections, read_topics};
use sluice_host::export::{ExportRun, RunSettings, export_topics};

pub async fn export(
    State(state): State<Arc<AppState>>,
    Json(request): Json<InvocationRequest>,
) -> (StatusCode, Json<InvocationResponse>) {
    tracing::debug!(metadata = %request.metadata, "timer invocation");
    let timer = request
        .data
        .values()
        .next()
        .map(decoded)
        .unwrap_or(Value::Null);
    let past_due = flag(timer.get("IsPastDue")).unwrap_or(false);
    let mut logs = Vec::new();
    if past_due {
        logs.push("timer is past due; running once now".to_owned());
    }
    let run = tokio::task::spawn_blocking(move || run_export(&state)).await;
    let run = match run {
        Ok(Ok(run)) => run,
        Ok(Err(error)) => return failure(logs, format!("export did not start: {error:#}")),
        Err(error) => return failure(logs, format!("export crashed: {error}")),
    };
    let topics: Vec<Value> = run
        .results
        .iter()
        .map(|(topic, result)| match result {
            Ok(r) => json!({
                "topic": topic, "status": "ok", "records": r.records, "files": r.files.len(),
                "bytes": r.bytes(), "dead_lettered": r.dead_lettered, "seconds": r.seconds,
            }),
            Err(e) => json!({"topic": topic, "status": "failed", "error": e.to_string()}),
        })
        .collect();
    logs.push(format!(
        "export {} into {}: {} topics, {} failed",
        run.run_id,
        run.root,
        run.results.len(),
        run.failed()
    ));
    let status = if run.failed() == 0 {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let response = InvocationResponse {
        logs,
        return_value: json!({"run_id": run.run_id, "past_due": past_due, "topics": topics}),
        ..InvocationResponse::default()
    };
    (status, Json(response))
}

/// The files are read on every invocation, so an edited topics.json takes
/// effect at the next tick without a restart.
fn run_export(state: &AppState) -> anyhow::Result<ExportRun> {
    let config = &state.config;
    let connections = Connections::read(&config.connections)?;
    let topics = read_topics(&config.topics)?;
    let settings = RunSettings {
        out: config.out.clone(),
        ..RunSettings::default()
    };
    Ok(export_topics(
        &topics,
        &connections,
        &settings,
        &config.transforms,
        &|_, _| {},
    )?)
}

fn failure(mut logs: Vec<String>, message: String) -> (StatusCode, Json<InvocationResponse>) {
    tracing::error!(error = message, "export invocation failed");
    logs.push(message.clone());
    let response = InvocationResponse {
        logs,
        return_value: json!({"error": message}),
        ..InvocationResponse::default()
    };
    (StatusCode::INTERNAL_SERVER_ERROR, Json(response))
}
