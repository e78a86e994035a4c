//! `sluice serve`: the function app's HTTP server. The Functions host
//! starts it with `FUNCTIONS_CUSTOMHANDLER_PORT` set. The access keys are
//! checked by `app.rs`; the storage account key, which only Azure can
//! judge, here, and only for being left blank.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::app::{AppSettings, OAuthSettings};

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
    /// The key admin requests must present (x-functions-key or Bearer); 32
    /// or more visible ASCII characters. Standalone, `POST /Export` and
    /// `POST /Enrich` take it too.
    #[arg(long, env = "SLUICE_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// The key `/api/fetch` and `/api/transforms/{name}/invoke` need
    /// [default: the admin key].
    #[arg(long, env = "SLUICE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The key `GET /metrics` needs (Prometheus scrapes) [default: the
    /// admin key].
    #[arg(long, env = "SLUICE_METRICS_KEY", hide_env_values = true)]
    metrics_key: Option<String>,
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

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args
        .transforms
        .registry
        .azure_key
        .as_deref()
        .is_some_and(|key| key.trim().is_empty())
    {
        anyhow::bail!(
            "SLUICE_AZURE_KEY (--azure-key) is set but blank: give the storage account's key, \
             or unset it"
        );
    }
    let oauth = match (&args.oauth_issuer, &args.oauth_audience) {
        (Some(issuer), Some(audience)) => Some(OAuthSettings {
            issuer: issuer.clone(),
            audience: audience.clone(),
            jwks_url: args.oauth_jwks_url.clone(),
            role: args.oauth_role.clone(),
            admin_role: args.oauth_admin_role.clone(),
        }),
        _ => None,
    };
    crate::app::serve(AppSettings {
        port: args.port,
        listen: args.listen,
        topics: args.topics,
        connections: args.connections,
        out: args.out,
        pipeline: args.pipeline,
        kafka: args.broker.config()?,
        transforms: args.transforms.source()?,
        admin_key: args.admin_key,
        api_key: args.api_key,
        metrics_key: args.metrics_key,
        oauth,
        cors_origins: args.cors_origins,
        schema_registry_url: args.schema_registry_url,
    })
}
