//! The function app's HTTP server, assembled from settings: the routes of
//! `handler/` over one transform source, one reader pool and the registry,
//! served standalone, under the Azure Functions host (which starts it with
//! `FUNCTIONS_CUSTOMHANDLER_PORT` and `FUNCTIONS_CUSTOMHANDLER_WORKER_ID`)
//! or as an AWS Lambda bootstrap. The keys are checked before anything
//! starts. The command line (`cli/serve.rs`) only turns flags into
//! [`AppSettings`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use sluice_host::codec::SchemaRegistry;
use sluice_host::config::{Connections, read_topics};
use sluice_host::enrich::PipelineDefinition;
use sluice_host::fetch::{FetchLimits, reader_pool};
use sluice_host::kafka::KafkaConfig;
use sluice_host::lake::Lake;
use sluice_host::transforms::TransformSource;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::handler::admin::{Admin, ExportFiles};
use crate::handler::data::DataApi;
use crate::handler::metrics::MetricsRoute;
use crate::handler::oauth::{OAuth, OAuthConfig};
use crate::handler::{
    Access, AccessKey, AppConfig, EnrichConfig, OAuthRule, PayloadLimit, Platform, PlatformEvent,
    router,
};

/// Everything the app is configured with.
pub struct AppSettings {
    pub port: u16,
    pub listen: String,
    pub topics: PathBuf,
    pub connections: PathBuf,
    pub out: Option<String>,
    pub pipeline: Option<PathBuf>,
    pub kafka: KafkaConfig,
    pub transforms: TransformSource,
    pub admin_key: Option<String>,
    pub api_key: Option<String>,
    /// The key a Prometheus scraper presents [default: the admin key].
    pub metrics_key: Option<String>,
    pub oauth: Option<OAuthSettings>,
    pub cors_origins: Vec<String>,
    pub schema_registry_url: Option<String>,
}

pub struct OAuthSettings {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: Option<String>,
    pub role: Option<String>,
    pub admin_role: Option<String>,
}

/// The OAuth2 rules for the data and the admin API, when an issuer is set.
fn oauth_rules(settings: Option<&OAuthSettings>) -> (Option<OAuthRule>, Option<OAuthRule>) {
    let Some(settings) = settings else {
        return (None, None);
    };
    let verifier = Arc::new(OAuth::new(OAuthConfig {
        issuer: settings.issuer.clone(),
        audience: settings.audience.clone(),
        jwks_url: settings.jwks_url.clone(),
        refetch_after: std::time::Duration::from_secs(30),
    }));
    let rule = |role: &Option<String>| OAuthRule {
        verifier: verifier.clone(),
        role: role.clone(),
    };
    (
        Some(rule(&settings.role)),
        settings
            .admin_role
            .as_ref()
            .map(|_| rule(&settings.admin_role)),
    )
}

/// A key setting, checked; the error names the setting and its flag.
fn key(setting: &str, flag: &str, value: Option<&str>) -> anyhow::Result<Option<AccessKey>> {
    value
        .map(|value| AccessKey::new(&format!("{setting} ({flag})"), value))
        .transpose()
        .map_err(anyhow::Error::from)
}

/// Where the app runs, from what each platform sets for it.
fn platform() -> Platform {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        Platform::Lambda
    } else if std::env::var_os("FUNCTIONS_CUSTOMHANDLER_WORKER_ID").is_some() {
        Platform::FunctionsHost
    } else {
        Platform::Standalone
    }
}

/// The payload limit for the host.json the Functions host runs the app
/// with (in `FUNCTIONS_APP_ROOT_PATH`), or the one `sluice package` ships.
fn payload_limit(platform: Platform) -> anyhow::Result<PayloadLimit> {
    let root = std::env::var_os("FUNCTIONS_APP_ROOT_PATH").map(PathBuf::from);
    match root {
        Some(root) if platform == Platform::FunctionsHost => {
            let path = Path::new(&root).join("host.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            PayloadLimit::from_host_json(&text).with_context(|| path.display().to_string())
        }
        _ => Ok(PayloadLimit::built_in()),
    }
}

pub fn serve(settings: AppSettings) -> anyhow::Result<ExitCode> {
    // Before anything starts: a blank or short key is a mistake, never a
    // key (an empty one would open what it guards to an empty header).
    let admin_key = key(
        "SLUICE_ADMIN_KEY",
        "--admin-key",
        settings.admin_key.as_deref(),
    )?;
    let data_key = key("SLUICE_API_KEY", "--api-key", settings.api_key.as_deref())?;
    let metrics_key = key(
        "SLUICE_METRICS_KEY",
        "--metrics-key",
        settings.metrics_key.as_deref(),
    )?;
    let platform = platform();
    let payload_limit = payload_limit(platform)?;
    tracing::info!(
        ?platform,
        max_batch_size = payload_limit.max_batch_size,
        payload_limit = payload_limit.bytes,
        "custom-handler payloads up to the limit"
    );
    let (data_oauth, admin_oauth) = oauth_rules(settings.oauth.as_ref());
    let access = Arc::new(Access {
        platform,
        data_key: data_key.or_else(|| admin_key.clone()),
        metrics_key: metrics_key.or_else(|| admin_key.clone()),
        admin_key,
        data_oauth,
        admin_oauth,
    });
    let transforms = Arc::new(settings.transforms);
    // Refused now, not at the first invocation: a pipeline the trigger
    // cannot run safely should stop the deployment, not lose records later.
    let enrich = match &settings.pipeline {
        Some(path) => Some(EnrichConfig::new(
            PipelineDefinition::read(path)?,
            settings.kafka.clone(),
        )?),
        None => None,
    };
    let admin = transforms.registry_store().cloned().map(|registry| {
        Arc::new(Admin {
            registry,
            runtime: transforms.runtime().clone(),
            kafka: Some(settings.kafka.clone()),
            exports: Some(ExportFiles {
                topics: settings.topics.clone(),
                storage: settings.out.clone().or_else(|| {
                    Connections::read(&settings.connections)
                        .ok()
                        .map(|c| c.storage_url())
                }),
            }),
        })
    });
    let readers = Arc::new(reader_pool(settings.kafka.clone()));
    {
        // Connecting now, while the server starts, takes that off the first
        // fetch; a cluster that is down only shows in the fetches.
        let readers = readers.clone();
        std::thread::spawn(move || {
            if let Err(error) = readers.warm() {
                tracing::warn!(%error, "could not connect to the cluster ahead of the first fetch");
            }
        });
    }
    let data = Arc::new(DataApi {
        readers,
        limits: FetchLimits::default(),
        transforms: transforms.clone(),
        schema_registry: settings
            .schema_registry_url
            .as_deref()
            .map(|url| {
                SchemaRegistry::new(url).map(|registry| {
                    registry.with_auth(sluice_host::codec::RegistryAuth::from_env())
                })
            })
            .transpose()
            .context("schema registry")?
            .map(Arc::new),
        lake: lake(
            &settings.topics,
            &settings.connections,
            settings.out.as_deref(),
        ),
    });
    let metrics = Some(Arc::new(MetricsRoute {
        handle: crate::metrics::handle()?,
    }));
    let cors = cors(&settings.cors_origins)?;
    // The HTTP server's own runtime: requests are served here, and the
    // host's blocking calls run on its blocking pool (spawn_blocking).
    let io = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (listen, port) = (settings.listen, settings.port);
    io.block_on(async {
        let app = router(AppConfig {
            topics: settings.topics,
            connections: settings.connections,
            out: settings.out,
            enrich,
            admin,
            data: Some(data),
            transforms,
            metrics,
            access,
            payload_limit,
        })
        .layer(cors);
        // On AWS Lambda the runtime API hands us events; the same router
        // answers them (API Gateway v2 / function URL payloads, and as
        // `POST /events` every other event).
        if platform == Platform::Lambda {
            tracing::info!("serving AWS Lambda events");
            return lambda_http::run(lambda_events(app))
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"));
        }
        let listener = tokio::net::TcpListener::bind((listen.as_str(), port))
            .await
            .with_context(|| format!("listening on {listen}:{port}"))?;
        tracing::info!(port, "serving the custom-handler protocol");
        // The peer's address: under the Functions host, the triggers
        // answer only the host's own calls over loopback.
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Where the export puts the topics of the app's topics.json: fetches and
/// searches read offsets below a partition's earliest from there. Read
/// when the server starts; an app without a topics.json (it exports
/// nothing) has none, and a topics.json or connections.json that does not
/// read is logged and leaves the data API reading Kafka only, so that the
/// API still starts (the export's invocations report the same error).
fn lake(topics: &Path, connections: &Path, out: Option<&str>) -> Option<Arc<Lake>> {
    if !topics.exists() {
        return None;
    }
    let opened = (|| {
        let entries = read_topics(topics)?;
        // As the export reads them: the storage's credentials are there.
        let connections = Connections::read(connections)?;
        anyhow::Ok(Lake::open(&entries, &connections, out)?)
    })();
    match opened {
        Ok(lake) => {
            tracing::info!(
                store = lake.store(),
                "offsets below a partition's earliest are read from the export"
            );
            Some(Arc::new(lake))
        }
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), topics = %topics.display(), "the export cannot be read back: fetches and searches read Kafka only");
            None
        }
    }
}

/// The router as a Lambda handler: an event that is not an HTTP request
/// (`lambda_http` passes it through as `POST /events`) is marked as the
/// platform's own, and its answer, which no HTTP caller sees, becomes the
/// invocation's error when it is not a success, so Lambda records the
/// failure (and retries an asynchronous event).
fn lambda_events(
    app: axum::Router,
) -> impl lambda_http::Service<
    lambda_http::Request,
    Response = axum::response::Response,
    Error = String,
    Future = impl Send,
> + Clone {
    use lambda_http::request::RequestContext;
    use lambda_http::tower::ServiceExt;
    lambda_http::service_fn(move |mut request: lambda_http::Request| {
        let app = app.clone();
        async move {
            let platform_event = matches!(
                request.extensions().get::<RequestContext>(),
                Some(RequestContext::PassThrough)
            );
            if platform_event {
                request.extensions_mut().insert(PlatformEvent);
            }
            let response = match app.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if !platform_event || response.status().is_success() {
                return Ok(response);
            }
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
        }
    })
}

/// Browsers may call the API from these origins; none unless configured.
fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let layer = CorsLayer::new().allow_methods(Any).allow_headers([
        CONTENT_TYPE,
        AUTHORIZATION,
        HeaderName::from_static("x-functions-key"),
    ]);
    if origins.iter().any(|o| o == "*") {
        return Ok(layer.allow_origin(Any));
    }
    let allowed = origins
        .iter()
        .filter(|o| !o.is_empty())
        .map(|o| HeaderValue::from_str(o).with_context(|| format!("CORS origin `{o}`")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(layer.allow_origin(AllowOrigin::list(allowed)))
}
