//! `POST /Enrich`: the Kafka-triggered enrichment function. The extension
//! commits the batch's offsets whatever the answer, so every record must be
//! accounted for here: a poison record is dead-lettered and the batch goes
//! on; only when producing fails (the broker is unreachable) is the answer
//! non-2xx, so the batch is retried. Outputs are produced directly (not
//! through the Kafka output binding): one invocation may write to several
//! topics and the dead-letter topic, and must know they were acknowledged
//! before it answers.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sluice_host::enrich::{Enricher, PipelineDefinition, Step};
use sluice_host::kafka::{KafkaConfig, Producer, require_topics};
use sluice_host::record::KafkaRecord;
use sluice_host::transforms::{DEFAULT_RELOAD, Followed, TransformSource};

use super::AppState;
use super::invocation::{Invocation, InvocationResponse};
use super::kafka_event::events;

/// The enrichment function's pipeline (checked when the app starts, see
/// [`EnrichConfig::new`]) and broker.
#[derive(Debug, Clone)]
pub struct EnrichConfig {
    definition: PipelineDefinition,
    pub kafka: KafkaConfig,
}

impl EnrichConfig {
    /// Refuses a pipeline the trigger cannot run without losing records
    /// (one with a join; see `PipelineDefinition::check_for_trigger`).
    pub fn new(definition: PipelineDefinition, kafka: KafkaConfig) -> anyhow::Result<Self> {
        definition.check_for_trigger()?;
        Ok(EnrichConfig { definition, kafka })
    }
}

/// The pipeline, loaded on the first invocation and kept: its join state
/// spans invocations, and its transform follows the registry's active
/// version as a worker's does.
pub struct LiveEnricher {
    enricher: Enricher,
    followed: Followed,
    producer: Producer,
}

pub type EnrichSlot = Mutex<Option<LiveEnricher>>;

impl LiveEnricher {
    fn start(config: &EnrichConfig, transforms: &TransformSource) -> anyhow::Result<Self> {
        let definition = config.definition.clone();
        let followed = Followed::start(transforms, &definition.transform, DEFAULT_RELOAD)
            .with_context(|| format!("pipeline `{}`", definition.name))?;
        let transform = followed.transform().clone();
        // The app's topics are provisioned with the cluster (infra/);
        // creating them here would guess partitions and replication.
        require_topics(
            &config.kafka,
            definition
                .outputs
                .iter()
                .chain([&definition.dead_letter])
                .map(String::as_str),
        )?;
        Ok(LiveEnricher {
            enricher: Enricher::new(definition, &transform)?,
            followed,
            producer: Producer::new(&config.kafka)?,
        })
    }

    fn definition(&self) -> &PipelineDefinition {
        self.enricher.definition()
    }
}

pub async fn enrich(
    State(state): State<Arc<AppState>>,
    Invocation(request): Invocation,
) -> (StatusCode, Json<InvocationResponse>) {
    tracing::debug!(metadata = %request.metadata, "kafka trigger invocation");
    // Taken, not copied: a batch's payload can be hundreds of megabytes.
    let binding = request
        .data
        .into_iter()
        .next()
        .map_or(Value::Null, |(_, value)| value);
    let run = tokio::task::spawn_blocking(move || invoke(&state, &binding)).await;
    match run {
        Ok(Ok(answer)) => (StatusCode::OK, Json(answer)),
        Ok(Err(error)) => failure(format!("{error:#}")),
        Err(error) => failure(format!("enrichment crashed: {error}")),
    }
}

fn invoke(state: &AppState, binding: &Value) -> anyhow::Result<InvocationResponse> {
    let config = state
        .config
        .enrich
        .as_ref()
        .context("no pipeline configured for /Enrich: set SLUICE_PIPELINE")?;
    let mut slot = state
        .enricher
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if slot.is_none() {
        *slot = Some(LiveEnricher::start(config, &state.config.transforms)?);
    }
    let live = slot.as_mut().context("pipeline not loaded")?;
    // A shadow version named or ended; one that cannot run is logged, and
    // the batch goes on without it. First: a promotion ends
    // the shadow with its report of the version it was compared with.
    if let Some(shadow) = live.followed.shadow_update()
        && let Err(error) = live.enricher.set_shadow(shadow)
    {
        tracing::warn!(%error, "cannot run the shadow version; running without it");
    }
    // Between batches, never inside one: a newly activated version.
    if let Some(next) = live.followed.update() {
        live.enricher
            .swap_transform(&next)
            .context("switching to the newly activated version")?;
    }
    let mut records = Vec::new();
    let mut unreadable = Vec::new();
    for event in events(binding) {
        match event {
            Ok(record) => records.push(record),
            Err(bad) => unreadable.push(bad),
        }
    }
    let mut step: Step = live.enricher.process(records, Instant::now());
    // No later step is sure to come on this instance: what the batch's time
    // budget left untried is dead-lettered, not kept.
    live.enricher.give_up_carried(&mut step);
    for bad in &unreadable {
        // Nothing says where it came from; the reason and the text do.
        let record = KafkaRecord {
            partition: -1,
            offset: -1,
            ..KafkaRecord::from_value("", -1, bad.text.clone().into_bytes())
        };
        live.enricher
            .dead_letter(&record, "trigger-payload", &bad.reason, &mut step);
    }
    let producing = || {
        format!(
            "pipeline `{}`: producing the batch's results",
            live.definition().name
        )
    };
    let sent = live.producer.send(&step.produce).with_context(producing)?;
    // An output the broker refuses for good is dead-lettered instead; only
    // a refusal that may pass, still failing after retries, fails the
    // invocation (and the batch is retried).
    let moved = live
        .enricher
        .settle(&live.producer, sent, &step)
        .with_context(producing)?;
    let mut stats = step.stats;
    stats.dead_lettered += moved;
    stats.produced = stats.produced.saturating_sub(moved);
    let waiting = live.enricher.pending();
    Ok(InvocationResponse {
        logs: vec![format!(
            "pipeline {}: {} records, {} produced, {} dead-lettered",
            live.definition().name,
            stats.read + unreadable.len() as u64,
            stats.produced,
            stats.dead_lettered,
        )],
        return_value: json!({
            "pipeline": live.definition().name,
            "read": stats.read,
            "unreadable": unreadable.len(),
            "produced": stats.produced,
            "dropped": stats.dropped,
            "dead_lettered": stats.dead_lettered,
            "joined": stats.joined,
            "incomplete": stats.incomplete,
            "waiting": waiting,
        }),
        ..InvocationResponse::default()
    })
}

fn failure(message: String) -> (StatusCode, Json<InvocationResponse>) {
    tracing::error!(
        error = message,
        "enrich invocation failed; the batch should be retried"
    );
    let response = InvocationResponse {
        logs: vec![message.clone()],
        return_value: json!({"error": message}),
        ..InvocationResponse::default()
    };
    (StatusCode::INTERNAL_SERVER_ERROR, Json(response))
}
