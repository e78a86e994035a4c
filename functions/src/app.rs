//! The function app's HTTP server, assembled from settings: the routes of
//! `handler/` over one transform source, one reader pool and the registry,
//! served standalone, under the Azure Functions host (which starts it with
//! `FUNCTIONS_CUSTOMHANDLER_PORT`) or as an AWS Lambda bootstrap. The
//! command line (`cli/serve.rs`) only turns flags into [`AppSettings`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use sluice_host::codec::SchemaRegistry;
use sluice_host::config::Connections;
use sluice_host::enrich::PipelineDefinition;
use sluice_host::fetch::{FetchLimits, reader_pool};
use sluice_host::kafka::KafkaConfig;
use sluice_host::transforms::TransformSource;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::handler::admin::{Admin, ExportFiles};
use crate::handler::data::DataApi;
use crate::handler::metrics::MetricsRoute;
use crate::handler::oauth::{OAuth, OAuthConfig};
use crate::handler::{AppConfig, EnrichConfig, OAuthRule, router};

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

pub fn serve(settings: AppSettings) -> anyhow::Result<ExitCode> {
    let (data_oauth, admin_oauth) = oauth_rules(settings.oauth.as_ref());
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
            key: settings.admin_key.clone(),
            oauth: admin_oauth,
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
        key: settings
            .api_key
            .clone()
            .or_else(|| settings.admin_key.clone()),
        oauth: data_oauth,
        transforms: transforms.clone(),
        schema_registry: settings
            .schema_registry_url
            .as_deref()
            .map(SchemaRegistry::new)
            .transpose()
            .context("schema registry")?
            .map(Arc::new),
    });
    let metrics = Some(Arc::new(MetricsRoute {
        handle: crate::metrics::handle()?,
        key: settings
            .metrics_key
            .clone()
            .or_else(|| settings.admin_key.clone()),
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
        })
        .layer(cors);
        // On AWS Lambda the runtime API hands us events; the same router
        // answers them (API Gateway v2 / function URL payloads).
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            tracing::info!("serving AWS Lambda events");
            return lambda_http::run(app)
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"));
        }
        let listener = tokio::net::TcpListener::bind((listen.as_str(), port))
            .await
            .with_context(|| format!("listening on {listen}:{port}"))?;
        tracing::info!(port, "serving the custom-handler protocol");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")?;
        Ok(ExitCode::SUCCESS)
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
