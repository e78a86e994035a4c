//! The admin API under `/api`: transforms (upload, list, activate, roll
//! back, delete a version, shadow runs) and pipelines (create, update, get, list,
//! delete, and a bulk create-or-update like the ETL workers'
//! `POST /api/consumer_configs`). Every route needs the admin key (checked
//! by `auth.rs`, in front of every route).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_host::config::read_topics;
use sluice_host::enrich::PipelineDefinition;
use sluice_host::health::now_ms;
use sluice_host::kafka::{KafkaConfig, end_offsets};
use sluice_host::registry::{Manifest, Registry};
use sluice_host::runtime::Runtime;
use sluice_host::topology::topology;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;

/// Longest the topology waits for the cluster's end offsets.
const END_OFFSETS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// What the admin routes need.
pub struct Admin {
    pub registry: Arc<Registry>,
    pub runtime: Runtime,
    /// The cluster, for the topics' end offsets on the topology.
    pub kafka: Option<KafkaConfig>,
    /// The export's topics.json (read on each request, so the topology
    /// shows it as deployed) and where its files go.
    pub exports: Option<ExportFiles>,
}

pub struct ExportFiles {
    pub topics: PathBuf,
    pub storage: Option<String>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("registry", &self.registry.url())
            .finish()
    }
}

pub fn routes(admin: Arc<Admin>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_transforms))
        .routes(routes!(get_transform, upload_transform))
        .routes(routes!(activate))
        .routes(routes!(rollback))
        .routes(routes!(delete_version))
        .routes(routes!(start_shadow, shadow_report, stop_shadow))
        .routes(routes!(list_pipelines, apply_pipelines))
        .routes(routes!(get_pipeline, put_pipeline, delete_pipeline))
        .routes(routes!(get_topology))
        .with_state(admin)
}

type ApiResult = Result<Response, ApiError>;

fn ok(status: StatusCode, body: impl serde::Serialize) -> ApiResult {
    Ok((status, Json(body)).into_response())
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default)]
    activate: bool,
}

#[utoipa::path(put, path = "/api/transforms/{name}", tag = "registry",
    summary = "Upload a component; validated before anything is recorded",
    params(("name" = String, Path, description = "Transform name"), ("activate" = Option<bool>, Query, description = "Make it the active version")),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, description = "Stored: name, version, world, size, active"),
        (status = 413, description = "Larger than the upload limit"),
        (status = 422, description = "Not a component of the transformer or aggregator world")),
    security(("functions_key" = []), ("bearer" = [])))]
async fn upload_transform(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> ApiResult {
    let limit = admin.registry.max_upload();
    let wasm = to_bytes(body, limit).await.map_err(|_| {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the upload is larger than the limit of {limit} bytes"),
        )
    })?;
    let uploaded = admin
        .registry
        .upload(&admin.runtime, &name, wasm, query.activate)
        .await?;
    ok(
        StatusCode::CREATED,
        json!({
            "name": name,
            "version": uploaded.info.version,
            "world": uploaded.info.world,
            "size": uploaded.info.size,
            "active": uploaded.manifest.active.as_ref() == Some(&uploaded.info.version),
        }),
    )
}

fn summary(manifest: &Manifest) -> Value {
    json!({
        "name": manifest.name,
        "active": manifest.active,
        "versions": manifest.versions.len(),
    })
}

#[utoipa::path(get, path = "/api/transforms", tag = "registry",
    summary = "Transforms with their active version",
    responses((status = 200, description = "[{name, active, versions}]")), security(("functions_key" = []), ("bearer" = [])))]
async fn list_transforms(State(admin): State<Arc<Admin>>) -> ApiResult {
    let manifests = admin.registry.list().await?;
    ok(
        StatusCode::OK,
        manifests.iter().map(summary).collect::<Vec<_>>(),
    )
}

#[utoipa::path(get, path = "/api/transforms/{name}", tag = "registry",
    summary = "A transform's manifest: versions, active, activation history",
    params(("name" = String, Path, description = "Transform name")), responses((status = 200, description = "The manifest"), (status = 404, description = "No such transform")), security(("functions_key" = []), ("bearer" = [])))]
async fn get_transform(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> ApiResult {
    ok(StatusCode::OK, admin.registry.manifest(&name).await?)
}

#[derive(Deserialize)]
struct ActivateBody {
    version: String,
}

/// A `{"version": "..."}` body, or a 400 saying so.
fn version_body(
    body: Result<Json<ActivateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<String, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"version\": \"...\"}}: {}", e.body_text()),
        )
    })?;
    Ok(body.version)
}

#[utoipa::path(post, path = "/api/transforms/{name}/activate", tag = "registry",
    summary = "Make a version (8+ hex digits of it) the active one",
    params(("name" = String, Path, description = "Transform name")), request_body(content = serde_json::Value, description = "{\"version\": \"...\"}"),
    responses((status = 200, description = "The new manifest"), (status = 404, description = "No such version")), security(("functions_key" = []), ("bearer" = [])))]
async fn activate(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    body: Result<Json<ActivateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let version = version_body(body)?;
    ok(
        StatusCode::OK,
        admin.registry.activate(&name, &version).await?,
    )
}

#[utoipa::path(post, path = "/api/transforms/{name}/shadow", tag = "registry",
    summary = "Shadow the active version with another (8+ hex digits of it): every running instance also runs it on the same batches and reports what it would change, producing nothing",
    params(("name" = String, Path, description = "Transform name")), request_body(content = serde_json::Value, description = "{\"version\": \"...\"}"),
    responses((status = 200, description = "The new manifest"), (status = 404, description = "No such version"),
        (status = 409, description = "The version is the active one"), (status = 422, description = "Not a transformer")),
    security(("functions_key" = []), ("bearer" = [])))]
async fn start_shadow(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    body: Result<Json<ActivateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let version = version_body(body)?;
    ok(
        StatusCode::OK,
        admin.registry.shadow(&name, &version).await?,
    )
}

#[utoipa::path(get, path = "/api/transforms/{name}/shadow", tag = "registry",
    summary = "The shadow run's report: records compared, the same, differing by kind, skipped past the CPU budget, and a sample of differing records, added up over every instance",
    params(("name" = String, Path, description = "Transform name")),
    responses((status = 200, description = "{transform, active, shadow, report}: shadow and report are null when no shadow runs, report until an instance has reported"), (status = 404, description = "No such transform")),
    security(("functions_key" = []), ("bearer" = [])))]
async fn shadow_report(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> ApiResult {
    ok(StatusCode::OK, admin.registry.shadow_status(&name).await?)
}

#[utoipa::path(delete, path = "/api/transforms/{name}/shadow", tag = "registry",
    summary = "End the shadow run (activating the shadow version ends it too)",
    params(("name" = String, Path, description = "Transform name")),
    responses((status = 200, description = "The new manifest"), (status = 404, description = "No such transform")),
    security(("functions_key" = []), ("bearer" = [])))]
async fn stop_shadow(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> ApiResult {
    ok(StatusCode::OK, admin.registry.stop_shadow(&name).await?)
}

#[utoipa::path(post, path = "/api/transforms/{name}/rollback", tag = "registry",
    summary = "Go back to the version active before the current one",
    params(("name" = String, Path, description = "Transform name")), responses((status = 200, description = "The new manifest"), (status = 400, description = "Nothing to roll back to")), security(("functions_key" = []), ("bearer" = [])))]
async fn rollback(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> ApiResult {
    ok(StatusCode::OK, admin.registry.rollback(&name).await?)
}

#[utoipa::path(delete, path = "/api/transforms/{name}/versions/{version}", tag = "registry",
    summary = "Remove a version that is not active",
    params(("name" = String, Path, description = "Transform name"), ("version" = String, Path, description = "Version (8+ hex digits)")),
    responses((status = 200, description = "The new manifest"), (status = 409, description = "The version is active")), security(("functions_key" = []), ("bearer" = [])))]
async fn delete_version(
    State(admin): State<Arc<Admin>>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        admin.registry.delete_version(&name, &version).await?,
    )
}

#[utoipa::path(get, path = "/api/pipelines", tag = "pipelines",
    summary = "Every pipeline definition", responses((status = 200, description = "The definitions")), security(("functions_key" = []), ("bearer" = [])))]
async fn list_pipelines(State(admin): State<Arc<Admin>>) -> ApiResult {
    ok(StatusCode::OK, admin.registry.pipelines().await?)
}

#[utoipa::path(get, path = "/api/pipelines/{name}", tag = "pipelines",
    summary = "One pipeline definition", params(("name" = String, Path, description = "Pipeline name")),
    responses((status = 200, description = "The definition"), (status = 404, description = "No such pipeline")), security(("functions_key" = []), ("bearer" = [])))]
async fn get_pipeline(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> ApiResult {
    ok(StatusCode::OK, admin.registry.pipeline(&name).await?)
}

#[utoipa::path(get, path = "/api/topology", tag = "pipelines",
    summary = "Which pipelines and exports read and write which topics, in layers from the sources, with warnings (loops, shared consumer groups)",
    responses((status = 200, description = "{workers, topics, warnings}")), security(("functions_key" = []), ("bearer" = [])))]
async fn get_topology(State(admin): State<Arc<Admin>>) -> ApiResult {
    let pipelines = admin.registry.pipelines().await?;
    let mut unreadable = None;
    let (exports, storage) = match &admin.exports {
        Some(files) if files.topics.exists() => match read_topics(&files.topics) {
            Ok(entries) => (entries, files.storage.as_deref()),
            Err(error) => {
                unreadable = Some(format!("exports left out: {error}"));
                (Vec::new(), None)
            }
        },
        _ => (Vec::new(), None),
    };
    let mut graph = topology(&pipelines, &exports, storage);
    graph.warnings.extend(unreadable);
    // Health is best effort: the graph is shown whatever is down.
    match admin.registry.heartbeats().await {
        Ok(beats) => graph.with_heartbeats(beats, now_ms()),
        Err(error) => graph
            .warnings
            .push(format!("workers' heartbeats unavailable: {error}")),
    }
    // Shadow runs of the transforms pipelines follow, best effort too.
    for transform in graph.followed_transforms() {
        match admin.registry.shadow_status(&transform).await {
            Ok(status) => {
                if let Some(shadow) = &status.shadow {
                    graph.with_shadow(&transform, shadow, status.report.as_ref());
                }
            }
            // A pipeline may name a transform not uploaded (yet).
            Err(error) if error.is_not_found() => {}
            Err(error) => graph.warnings.push(format!(
                "the shadow run of transform `{transform}` unavailable: {error}"
            )),
        }
    }
    if let Some(kafka) = &admin.kafka {
        let mut config = kafka.clone();
        // A page refreshing every few seconds should not wait long on a
        // cluster that does not answer.
        config.request_timeout = END_OFFSETS_TIMEOUT;
        let names = graph.topic_names();
        match tokio::task::spawn_blocking(move || end_offsets(&config, &names)).await {
            Ok(Ok(offsets)) => graph.with_end_offsets(offsets),
            Ok(Err(error)) => graph
                .warnings
                .push(format!("topics' end offsets unavailable: {error}")),
            Err(error) => graph
                .warnings
                .push(format!("topics' end offsets unavailable: {error}")),
        }
    }
    ok(StatusCode::OK, graph)
}

/// A JSON body, or a 400 that says what is wrong with it.
fn json_body(
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Value, ApiError> {
    body.map(|Json(v)| v)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))
}

#[utoipa::path(put, path = "/api/pipelines/{name}", tag = "pipelines",
    summary = "Create or replace a pipeline definition", params(("name" = String, Path, description = "Pipeline name")),
    request_body(content = serde_json::Value, description = "A pipeline definition"),
    responses((status = 200, description = "Stored"), (status = 400, description = "Invalid; the message names the field")), security(("functions_key" = []), ("bearer" = [])))]
async fn put_pipeline(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let mut value = json_body(body)?;
    let Some(object) = value.as_object_mut() else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "the body must be one pipeline definition (a JSON object), not {}; \
                 to apply a list, POST it to /api/pipelines",
                kind_of(&value)
            ),
        ));
    };
    match object.get("name") {
        Some(Value::String(given)) if *given != name => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("the body's name `{given}` differs from the path's `{name}`"),
            ));
        }
        Some(Value::String(_)) => {}
        None => {
            object.insert("name".into(), Value::String(name.clone()));
        }
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "pipeline definition, field `name`: expected the name `{name}` as a string, not {}",
                    kind_of(other)
                ),
            ));
        }
    }
    let definition = PipelineDefinition::from_value(&value)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    admin.registry.put_pipeline(&definition).await?;
    ok(StatusCode::OK, &definition)
}

/// What a JSON value is, for messages about bodies of the wrong shape.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Create or update several pipelines at once; all are checked before any
/// is stored.
#[utoipa::path(post, path = "/api/pipelines", tag = "pipelines",
    summary = "Create or update several pipelines; all are checked before any is stored",
    request_body(content = serde_json::Value, description = "A definition or a list of them"),
    responses((status = 200, description = "{applied: [names]}"), (status = 400, description = "Invalid; names the entry and field")), security(("functions_key" = []), ("bearer" = [])))]
async fn apply_pipelines(
    State(admin): State<Arc<Admin>>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let value = json_body(body)?;
    if !matches!(value, Value::Array(_) | Value::Object(_)) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "the body must be a pipeline definition or a list of them, not {}",
                kind_of(&value)
            ),
        ));
    }
    let definitions = PipelineDefinition::one_or_many(&value)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    for definition in &definitions {
        admin.registry.put_pipeline(definition).await?;
    }
    let names: Vec<&str> = definitions.iter().map(|d| d.name.as_str()).collect();
    ok(StatusCode::OK, json!({"applied": names}))
}

#[utoipa::path(delete, path = "/api/pipelines/{name}", tag = "pipelines",
    summary = "Delete a pipeline definition", params(("name" = String, Path, description = "Pipeline name")),
    responses((status = 200, description = "Deleted"), (status = 404, description = "No such pipeline")), security(("functions_key" = []), ("bearer" = [])))]
async fn delete_pipeline(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> ApiResult {
    admin.registry.delete_pipeline(&name).await?;
    ok(StatusCode::OK, json!({"deleted": name}))
}
