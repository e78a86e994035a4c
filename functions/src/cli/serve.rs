//! `sluice serve`: the function app's HTTP server. The Functions host
//! starts it with `FUNCTIONS_CUSTOMHANDLER_PORT` set.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use std::sync::Arc;

use crate::handler::admin::Admin;
use crate::handler::{AppConfig, EnrichConfig, router};

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
    #[command(flatten)]
    transforms: super::TransformsDir,
    /// The registry behind the admin API (`/api/transforms`, `/api/pipelines`).
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    /// The key admin requests must present (x-functions-key or Bearer).
    #[arg(long, env = "SLUICE_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let admin = match args.registry.open()? {
        Some(registry) => Some(Arc::new(Admin {
            registry,
            runtime: crate::transforms::runtime()?,
            key: args.admin_key.clone(),
        })),
        None => None,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let app = router(AppConfig {
            topics: args.topics,
            connections: args.connections,
            out: args.out,
            enrich: args.pipeline.map(|pipeline| EnrichConfig {
                pipeline,
                kafka: args.broker.config(),
                transforms_dir: args.transforms.dir(),
            }),
            admin,
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("listening on 127.0.0.1:{}", args.port))?;
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
