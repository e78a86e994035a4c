//! Subcommands, one module each.

mod aggregate;
mod demo;
pub mod enrich;
pub mod export;
mod fetch;
mod generate;
mod import;
mod package;
mod progress;
pub mod registry;
mod run;
mod serve;
mod table;
mod topology;
mod transform;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_host::kafka::{KafkaConfig, OAuthBearer};
use sluice_host::transforms::TransformSource;

use crate::logging::LogFormat;

/// Sluice: Kafka in, WebAssembly transforms, Kafka and Parquet out.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
pub struct Args {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "SLUICE_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// Where the broker is, shared by every subcommand that talks to Kafka.
#[derive(Debug, clap::Args)]
struct Broker {
    /// Kafka bootstrap servers.
    #[arg(long, env = "SLUICE_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Any librdkafka property as key=value (repeatable; in the environment,
    /// comma-separated): security.protocol, sasl.*, session.timeout.ms, ...
    #[arg(
        long = "kafka-property",
        env = "SLUICE_KAFKA_PROPERTIES",
        value_delimiter = ',',
        value_parser = parse_pair
    )]
    properties: Vec<(String, String)>,
    /// `entra`: sign in to Event Hubs with Entra ID tokens (SASL OAUTHBEARER)
    /// from the identity the environment names (`AZURE_CLIENT_ID`, ...; the
    /// managed identity on App Service and Functions; `az login` on a
    /// laptop), instead of a connection string in the properties.
    #[arg(long, env = "SLUICE_KAFKA_AUTH", value_enum)]
    kafka_auth: Option<KafkaAuthArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KafkaAuthArg {
    Entra,
}

impl Broker {
    fn config(&self) -> anyhow::Result<KafkaConfig> {
        let config = self
            .properties
            .iter()
            .fold(KafkaConfig::new(&self.brokers), |config, (k, v)| {
                config.with(k, v)
            });
        match self.kafka_auth {
            None => Ok(config),
            Some(KafkaAuthArg::Entra) => {
                let identity = sluice_host::identity::AzureIdentity::default().with_env();
                let credential = sluice_host::identity::Credential::choose(&identity, "kafka")
                    .context("signing in to Kafka with Entra ID (SLUICE_KAFKA_AUTH=entra)")?;
                let scope = OAuthBearer::event_hubs_scope(&self.brokers);
                Ok(config.with_oauth(OAuthBearer::new(credential, scope)))
            }
        }
    }
}

/// Where named transforms are found: the registry when one is given, else
/// a folder of `.wasm` files.
#[derive(Debug, clap::Args)]
struct TransformsFrom {
    /// Folder of `.wasm` transforms looked up by name, when no registry is
    /// given [default: where scripts/build-guests.sh puts them].
    #[arg(long, env = "SLUICE_TRANSFORMS_DIR")]
    transforms_dir: Option<PathBuf>,
    #[command(flatten)]
    registry: registry::RegistryArgs,
}

impl TransformsFrom {
    fn source(&self) -> anyhow::Result<TransformSource> {
        let runtime = crate::transforms::runtime()?;
        Ok(match self.registry.open()? {
            Some(registry) => TransformSource::registry(runtime, registry),
            None => TransformSource::folder(
                runtime,
                self.transforms_dir
                    .clone()
                    .unwrap_or_else(crate::transforms::default_dir),
            ),
        })
    }
}

/// A transform the user names (looked up where [`TransformsFrom`] says),
/// or a `.wasm` file given as a file: a name is never taken as a path.
fn chosen_transform(
    name: Option<&str>,
    file: Option<&std::path::Path>,
    from: &TransformsFrom,
) -> anyhow::Result<std::sync::Arc<sluice_host::runtime::Transform>> {
    match (name, file) {
        (_, Some(file)) => crate::transforms::load_file(&crate::transforms::runtime()?, file),
        (Some(name), None) => {
            let source = from.source()?;
            source
                .load_named(name, None)
                .with_context(|| format!("transform `{name}` from {}", source.describe()))
        }
        (None, None) => anyhow::bail!("name a transform, or give its file with --wasm"),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a transformer on JSON lines from stdin; one JSON line per input
    /// on stdout. Test a transform on a file before uploading it.
    Transform(transform::TransformArgs),
    /// Read a topic to its end, run a transformer over it and produce the
    /// results to output topics (failures to the dead-letter topic).
    Run(run::RunArgs),
    /// Read a topic to its end through an aggregator and write its result
    /// as a Parquet file.
    Aggregate(aggregate::AggregateArgs),
    /// Export topics to Parquet files (the topics.json and
    /// connections.json files), committing group offsets after the files are in place.
    Export(export::ExportArgs),
    /// Run a pipeline as a long-running consumer-group worker (joins,
    /// several outputs, dead letters; at-least-once).
    Enrich(enrich::EnrichArgs),
    /// Serve the Azure Functions custom-handler protocol (and the same
    /// routes standalone) on $FUNCTIONS_CUSTOMHANDLER_PORT.
    Serve(Box<serve::ServeArgs>),
    /// Fetch records at given offsets as JSON lines, CSV or Parquet,
    /// optionally with a transform's dry-run outcome beside each.
    Fetch(fetch::FetchArgs),
    /// Upload, list, activate and roll back transforms in the registry.
    Transforms(registry::TransformsArgs),
    /// Create, list and delete pipeline definitions in the registry.
    Pipelines(registry::PipelinesArgs),
    /// Produce generated records to a topic.
    Gen(generate::GenArgs),
    /// Import JSON lines, Avro and Parquet files from a folder or Azure
    /// storage into a topic, one JSON record per row (resumable).
    Import(import::ImportArgs),
    /// The whole job on embedded defaults: generate bookings, categorise
    /// them into expedia_ext, summarise to Parquet, print the summary.
    Demo(demo::DemoArgs),
    /// Build the deployable zip: the Azure Functions app or the AWS Lambda
    /// bootstrap, with the configuration files given.
    Package(package::PackageArgs),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Transform(a) => transform::run(a),
        Command::Run(a) => run::run(a),
        Command::Aggregate(a) => aggregate::run(a),
        Command::Export(a) => export::run(a),
        Command::Fetch(a) => fetch::run(a),
        Command::Transforms(a) => registry::transforms(a),
        Command::Pipelines(a) => registry::pipelines(a),
        Command::Gen(a) => generate::run(a),
        Command::Import(a) => import::run(a),
        Command::Enrich(a) => enrich::run(a),
        Command::Serve(a) => serve::run(*a),
        Command::Demo(a) => demo::run(a),
        Command::Package(a) => package::run(a),
    }
}

/// `key=value` pairs for pipeline metadata.
fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}
