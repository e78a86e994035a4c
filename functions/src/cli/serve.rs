//! `sluice serve`: the function app's HTTP server. The Functions host
//! starts it with `FUNCTIONS_CUSTOMHANDLER_PORT` set.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use std::sync::Arc;

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use sluice_host::codec::SchemaRegistry;

use crate::fetch::{FetchLimits, reader_pool};
use crate::handler::admin::{Admin, ExportFiles};
use crate::handler::data::DataApi;
use crate::handler::oauth::{OAuth, OAuthConfig};
use crate::handler::{AppConfig, EnrichConfig, OAuthRule, router};
use sluice_host::config::Connections;
use sluice_host::enrich::PipelineDefinition;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT", default_value_t = 8080)]
    port: u16,
    /// topics.json for the export.
    #[arg(long, env = "SLUICE_TOPICS", default_value = "topics.json")]
    topics: PathBuf,
    /// connections.json for the export.
    #[arg(long, env = "SLUICE_CONNECTIONS", default_value = "connections.json")]
    connections: PathBuf,
    /// Where exports go (overrides the connections' storage).
    #[arg(long, env = "SLUICE_EXPORT_URL")]
    out: Option<String>,
    /// Pipeline definition behind the Kafka-triggered `/Enrich` route.
    #[arg(long, env = "SLUICE_PIPELINE")]
    pipeline: Option<PathBuf>,
    #[command(flatten)]
    broker: super::Broker,
    /// The registry behind the admin API (`/api/transforms`,
    /// `/api/pipelines`) and every named transform; without one, named
    /// transforms come from the transforms folder and the admin API is off.
    #[command(flatten)]
    transforms: super::TransformsFrom,
    /// The key admin requests must present (x-functions-key or Bearer).
    #[arg(long, env = "SLUICE_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// The key `/api/fetch` and `/api/transforms/{name}/invoke` need
    /// [default: the admin key].
    #[arg(long, env = "SLUICE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// OAuth2: accept bearer tokens (JWTs) from this issuer besides the
    /// keys, e.g. `https://login.microsoftonline.com/<tenant>/v2.0`.
    #[arg(long, env = "SLUICE_OAUTH_ISSUER", requires = "oauth_audience")]
    oauth_issuer: Option<String>,
    /// The audience (`aud`) tokens must be issued for.
    #[arg(long, env = "SLUICE_OAUTH_AUDIENCE", requires = "oauth_issuer")]
    oauth_audience: Option<String>,
    /// The issuer's signing keys [default: `jwks_uri` from the issuer's
    /// `/.well-known/openid-configuration`].
    #[arg(long, env = "SLUICE_OAUTH_JWKS_URL")]
    oauth_jwks_url: Option<String>,
    /// A role or scope tokens need for the data API (`/api/fetch`,
    /// `/api/transforms/{name}/invoke`) [default: none].
    #[arg(long, env = "SLUICE_OAUTH_ROLE")]
    oauth_role: Option<String>,
    /// The role or scope tokens need for the admin API; without it, the
    /// admin API takes only the admin key.
    #[arg(long, env = "SLUICE_OAUTH_ADMIN_ROLE")]
    oauth_admin_role: Option<String>,
    /// Origins allowed to call the API from a browser (comma-separated, or
    /// `*`); none by default.
    #[arg(long, env = "SLUICE_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Confluent Schema Registry, for `/api/fetch?value_format=avro`.
    #[arg(long, env = "SLUICE_SCHEMA_REGISTRY_URL")]
    schema_registry_url: Option<String>,
    /// Interface to listen on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1")]
    listen: String,
}

/// The OAuth2 rules for the data and the admin API, when an issuer is set.
fn oauth_rules(args: &ServeArgs) -> (Option<OAuthRule>, Option<OAuthRule>) {
    let (Some(issuer), Some(audience)) = (&args.oauth_issuer, &args.oauth_audience) else {
        return (None, None);
    };
    let verifier = Arc::new(OAuth::new(OAuthConfig {
        issuer: issuer.clone(),
        audience: audience.clone(),
        jwks_url: args.oauth_jwks_url.clone(),
        refetch_after: std::time::Duration::from_secs(30),
    }));
    let rule = |role: &Option<String>| OAuthRule {
        verifier: verifier.clone(),
        role: role.clone(),
    };
    (
        Some(rule(&args.oauth_role)),
        args.oauth_admin_role
            .as_ref()
            .map(|_| rule(&args.oauth_admin_role)),
    )
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (data_oauth, admin_oauth) = oauth_rules(&args);
    let transforms = Arc::new(args.transforms.source()?);
    // Refused now, not at the first invocation: a pipeline the trigger
    // cannot run safely should stop the deployment, not lose records later.
    let enrich = match &args.pipeline {
        Some(path) => Some(EnrichConfig::new(
            PipelineDefinition::read(path)?,
            args.broker.config(),
        )?),
        None => None,
    };
    let admin = transforms.registry_store().cloned().map(|registry| {
        Arc::new(Admin {
            registry,
            runtime: transforms.runtime().clone(),
            key: args.admin_key.clone(),
            oauth: admin_oauth,
            exports: Some(ExportFiles {
                topics: args.topics.clone(),
                storage: args.out.clone().or_else(|| {
                    Connections::read(&args.connections)
                        .ok()
                        .map(|c| c.storage_url())
                }),
            }),
        })
    });
    let readers = Arc::new(reader_pool(args.broker.config()));
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
        key: args.api_key.clone().or_else(|| args.admin_key.clone()),
        oauth: data_oauth,
        transforms: transforms.clone(),
        schema_registry: args
            .schema_registry_url
            .as_deref()
            .map(SchemaRegistry::new)
            .transpose()
            .context("schema registry")?
            .map(Arc::new),
    });
    let cors = cors(&args.cors_origins)?;
    let io = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    io.block_on(async {
        let app = router(AppConfig {
            topics: args.topics,
            connections: args.connections,
            out: args.out,
            enrich,
            admin,
            data: Some(data),
            transforms,
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
        let listener = tokio::net::TcpListener::bind((args.listen.as_str(), args.port))
            .await
            .with_context(|| format!("listening on {}:{}", args.listen, args.port))?;
        tracing::info!(port = args.port, "serving the custom-handler protocol");
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
