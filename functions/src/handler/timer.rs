//! `POST /Export`: the timer-triggered export, and `POST /events`: the
//! same export for an EventBridge scheduled event (AWS Lambda). A past-due
//! run runs once, like any other; the answer is non-2xx when any topic
//! failed, so the platform records the invocation as failed. One export
//! runs at a time in an app: a second asked for meanwhile is refused (409)
//! rather than run over the same topics at once.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::invocation::{Invocation, InvocationResponse, decoded, flag};
use sluice_host::config::{Connections, read_topics};
use sluice_host::export::{ExportRun, RunSettings, export_topics};

/// Held by the export that is running.
pub type ExportSlot = Arc<tokio::sync::Mutex<()>>;

type Answer = (StatusCode, Json<InvocationResponse>);

pub async fn export(State(state): State<Arc<AppState>>, Invocation(request): Invocation) -> Answer {
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
    run(state, logs, past_due).await
}

/// An EventBridge event as a schedule sends it; the fields that say so.
#[derive(Deserialize)]
struct ScheduledEvent {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    time: Option<String>,
}

/// `POST /events`: what AWS Lambda hands the app for an event that is not
/// an HTTP request; an EventBridge scheduled event runs the export.
pub async fn scheduled(State(state): State<Arc<AppState>>, body: Bytes) -> Answer {
    let event = serde_json::from_slice::<ScheduledEvent>(&body)
        .ok()
        .filter(|e| e.source == "aws.events" && e.detail_type == "Scheduled Event");
    let Some(event) = event else {
        let message = "the event is not an EventBridge scheduled event (\"source\": \
                       \"aws.events\", \"detail-type\": \"Scheduled Event\"), the only event \
                       this function runs on"
            .to_owned();
        return answer(
            StatusCode::BAD_REQUEST,
            vec![message.clone()],
            json!({"error": message}),
        );
    };
    let logs = vec![format!(
        "scheduled event of {}",
        event.time.as_deref().unwrap_or("an unknown time")
    )];
    run(state, logs, false).await
}

/// The export, unless one is running already.
async fn run(state: Arc<AppState>, mut logs: Vec<String>, past_due: bool) -> Answer {
    let Ok(running) = state.export.clone().try_lock_owned() else {
        let message = "an export is already running in this app; this one did not start \
                       (the next schedule runs it)"
            .to_owned();
        tracing::warn!("{message}");
        logs.push(message.clone());
        return answer(StatusCode::CONFLICT, logs, json!({"error": message}));
    };
    let run = tokio::task::spawn_blocking(move || {
        // Held until the export ends, even if the caller hung up.
        let _running = running;
        run_export(&state)
    })
    .await;
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
    answer(
        status,
        logs,
        json!({"run_id": run.run_id, "past_due": past_due, "topics": topics}),
    )
}

fn answer(status: StatusCode, logs: Vec<String>, return_value: Value) -> Answer {
    let response = InvocationResponse {
        logs,
        return_value,
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

fn failure(mut logs: Vec<String>, message: String) -> Answer {
    tracing::error!(error = message, "export invocation failed");
    logs.push(message.clone());
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        logs,
        json!({"error": message}),
    )
}
