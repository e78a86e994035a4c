//! `sluice transforms ...` and `sluice pipelines ...`: the registry from the
//! command line, straight against its URL (a folder or Azure storage) or
//! through a running app's admin HTTP API (`api.rs`). Each
//! subcommand is written once against [`Backend`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sluice_host::config::read_topics;
use sluice_host::topology::topology;

use super::topology::{TopologyFormat, render};
use bytes::Bytes;
use clap::Subcommand;
use serde::Deserialize;
use serde_json::Value;
use sluice_host::enrich::PipelineDefinition;
use sluice_host::io::block_on;
use sluice_host::registry::{Manifest, Registry, ShadowStatus};

use api::AdminApi;

mod api;
use sluice_host::storage::AzureCredentials;

/// Where the registry is. The flags may follow a subcommand
/// (`sluice transforms list --registry DIR`).
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Registry URL: a folder, `file://…`, `az://container/dir` or
    /// `abfss://filesystem@account.dfs.core.windows.net/dir`.
    #[arg(long = "registry", env = "SLUICE_REGISTRY", global = true)]
    pub url: Option<String>,
    /// Azure storage account (azure_storage_account_name in connections.json).
    #[arg(long, env = "SLUICE_AZURE_ACCOUNT", global = true)]
    pub azure_account: Option<String>,
    /// Azure storage account key.
    #[arg(long, env = "SLUICE_AZURE_KEY", hide_env_values = true, global = true)]
    pub azure_key: Option<String>,
    /// Blob endpoint, for Azurite or a sovereign cloud.
    #[arg(long, env = "SLUICE_AZURE_ENDPOINT", global = true)]
    pub azure_endpoint: Option<String>,
    /// Neither store nor load precompiled artifacts in the registry: every
    /// instance compiles each version itself. For a registry whose writers
    /// are trusted less than this binary (an artifact is native code).
    #[arg(long, env = "SLUICE_NO_SHARED_ARTIFACTS", global = true)]
    pub no_shared_artifacts: bool,
}

impl RegistryArgs {
    pub fn open(&self) -> anyhow::Result<Option<Arc<Registry>>> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let credentials = AzureCredentials {
            account: self.azure_account.clone(),
            key: self.azure_key.clone(),
            endpoint: self.azure_endpoint.clone(),
            ..AzureCredentials::default()
        };
        let registry = Registry::open(url, &credentials)
            .with_context(|| format!("opening the registry at {url}"))?
            .with_shared_artifacts(!self.no_shared_artifacts);
        Ok(Some(Arc::new(registry)))
    }

    pub fn require(&self) -> anyhow::Result<Arc<Registry>> {
        self.open()?
            .context("no registry: give --registry URL or set SLUICE_REGISTRY")
    }
}

/// Where `transforms` and `pipelines` work: the registry itself or the
/// admin API of an app serving it; exactly one of the two.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Admin HTTP API of a running app instead of the registry itself:
    /// `http://127.0.0.1:8080`, `https://myapp.azurewebsites.net`.
    #[arg(
        long = "api",
        value_name = "URL",
        env = "SLUICE_API_URL",
        global = true
    )]
    api: Option<String>,
    /// The app's admin key (sent as x-functions-key), with --api.
    #[arg(
        long = "key",
        value_name = "KEY",
        env = "SLUICE_ADMIN_KEY",
        hide_env_values = true,
        global = true
    )]
    key: Option<String>,
}

impl TargetArgs {
    fn open(&self) -> anyhow::Result<Box<dyn Backend>> {
        match (&self.registry.url, &self.api) {
            (Some(_), None) => Ok(Box::new(Direct {
                registry: self.registry.require()?,
            })),
            (None, Some(api)) => {
                tracing::debug!(api = %api, "registry through the admin API");
                Ok(Box::new(AdminApi::new(api, self.key.as_deref())?))
            }
            (Some(_), Some(_)) => anyhow::bail!(
                "both a registry and an admin API are given: use either --registry URL \
                 (SLUICE_REGISTRY) or --api URL (SLUICE_API_URL), not both"
            ),
            (None, None) => anyhow::bail!(
                "no registry: give --registry URL (or set SLUICE_REGISTRY) to use the \
                 registry directly, or --api URL --key KEY (or set SLUICE_API_URL and \
                 SLUICE_ADMIN_KEY) to go through a running app's admin API"
            ),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct TransformsArgs {
    #[command(subcommand)]
    command: TransformsCommand,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Debug, Subcommand)]
enum TransformsCommand {
    /// Validate and store a component; prints its version.
    Upload {
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// Make it the active version at once.
        #[arg(long)]
        activate: bool,
    },
    /// Transforms with their active version, or one transform's versions.
    List { name: Option<String> },
    /// Make VERSION (at least 8 hex digits of it) the active one.
    Activate { name: String, version: String },
    /// Go back to the version active before the current one.
    Rollback { name: String },
    /// Remove a version that is not active.
    Delete { name: String, version: String },
    /// Shadow the active version with VERSION (8+ hex digits of it): every
    /// running worker and trigger instance also runs it on the same
    /// batches, within a share of the active version's CPU time, and
    /// reports what it would change; its outputs are never produced.
    /// Activating VERSION promotes it and ends the shadow run.
    Shadow {
        name: String,
        #[arg(required_unless_present = "stop")]
        version: Option<String>,
        /// End the shadow run instead.
        #[arg(long, conflicts_with = "version")]
        stop: bool,
    },
    /// What the shadow run found, over every instance: records compared,
    /// the same, differing by kind, skipped, and a sample of differing
    /// records.
    ShadowReport {
        name: String,
        /// The report as JSON, as GET /api/transforms/{name}/shadow answers.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct PipelinesArgs {
    #[command(subcommand)]
    command: PipelinesCommand,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Debug, Subcommand)]
enum PipelinesCommand {
    /// Create or replace pipelines from a file: one definition or a list.
    Apply {
        file: PathBuf,
    },
    List,
    Get {
        name: String,
    },
    Delete {
        name: String,
    },
    /// Which pipelines (and exports) read and write which topics, with
    /// warnings for loops and shared consumer groups.
    Topology {
        /// The export's topics.json, to show the exports too.
        #[arg(long)]
        topics: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: TopologyFormat,
    },
}

/// A transform in a listing.
#[derive(Debug, Deserialize)]
pub struct TransformSummary {
    pub name: String,
    pub active: Option<String>,
    /// How many versions it has.
    pub versions: usize,
}

impl From<&Manifest> for TransformSummary {
    fn from(manifest: &Manifest) -> Self {
        TransformSummary {
            name: manifest.name.clone(),
            active: manifest.active.clone(),
            versions: manifest.versions.len(),
        }
    }
}

/// What an upload stored.
#[derive(Debug)]
pub struct UploadOutcome {
    pub version: String,
    pub world: String,
    pub size: u64,
    /// Whether it is the active version now.
    pub active: bool,
}

/// The registry operations the subcommands need, the same whether they go
/// to the store or through the admin API.
pub trait Backend {
    fn upload(&self, name: &str, wasm: Vec<u8>, activate: bool) -> anyhow::Result<UploadOutcome>;
    fn list(&self) -> anyhow::Result<Vec<TransformSummary>>;
    fn manifest(&self, name: &str) -> anyhow::Result<Manifest>;
    fn activate(&self, name: &str, version: &str) -> anyhow::Result<Manifest>;
    fn rollback(&self, name: &str) -> anyhow::Result<Manifest>;
    fn delete_version(&self, name: &str, version: &str) -> anyhow::Result<Manifest>;
    fn shadow(&self, name: &str, version: &str) -> anyhow::Result<Manifest>;
    fn stop_shadow(&self, name: &str) -> anyhow::Result<Manifest>;
    fn shadow_status(&self, name: &str) -> anyhow::Result<ShadowStatus>;
    /// Stores one definition or a list (all checked first); their names.
    fn apply_pipelines(&self, definitions: &Value) -> anyhow::Result<Vec<String>>;
    fn pipelines(&self) -> anyhow::Result<Vec<PipelineDefinition>>;
    fn pipeline(&self, name: &str) -> anyhow::Result<PipelineDefinition>;
    fn delete_pipeline(&self, name: &str) -> anyhow::Result<()>;
}

/// Straight against the registry's store; each call waited for on the
/// host's I/O runtime.
struct Direct {
    registry: Arc<Registry>,
}

impl Backend for Direct {
    fn upload(&self, name: &str, wasm: Vec<u8>, activate: bool) -> anyhow::Result<UploadOutcome> {
        let runtime = crate::transforms::runtime()?;
        let uploaded = block_on(
            self.registry
                .upload(&runtime, name, Bytes::from(wasm), activate),
        )?;
        let active = uploaded.manifest.active.as_ref() == Some(&uploaded.info.version);
        Ok(UploadOutcome {
            version: uploaded.info.version,
            world: uploaded.info.world,
            size: uploaded.info.size,
            active,
        })
    }

    fn list(&self) -> anyhow::Result<Vec<TransformSummary>> {
        let manifests = block_on(self.registry.list())?;
        Ok(manifests.iter().map(TransformSummary::from).collect())
    }

    fn manifest(&self, name: &str) -> anyhow::Result<Manifest> {
        Ok(block_on(self.registry.manifest(name))?)
    }

    fn activate(&self, name: &str, version: &str) -> anyhow::Result<Manifest> {
        Ok(block_on(self.registry.activate(name, version))?)
    }

    fn rollback(&self, name: &str) -> anyhow::Result<Manifest> {
        Ok(block_on(self.registry.rollback(name))?)
    }

    fn delete_version(&self, name: &str, version: &str) -> anyhow::Result<Manifest> {
        Ok(block_on(self.registry.delete_version(name, version))?)
    }

    fn shadow(&self, name: &str, version: &str) -> anyhow::Result<Manifest> {
        Ok(block_on(self.registry.shadow(name, version))?)
    }

    fn stop_shadow(&self, name: &str) -> anyhow::Result<Manifest> {
        Ok(block_on(self.registry.stop_shadow(name))?)
    }

    fn shadow_status(&self, name: &str) -> anyhow::Result<ShadowStatus> {
        Ok(block_on(self.registry.shadow_status(name))?)
    }

    fn apply_pipelines(&self, definitions: &Value) -> anyhow::Result<Vec<String>> {
        let definitions = PipelineDefinition::one_or_many(definitions)?;
        let mut names = Vec::with_capacity(definitions.len());
        for definition in definitions {
            block_on(self.registry.put_pipeline(&definition))?;
            names.push(definition.name);
        }
        Ok(names)
    }

    fn pipelines(&self) -> anyhow::Result<Vec<PipelineDefinition>> {
        Ok(block_on(self.registry.pipelines())?)
    }

    fn pipeline(&self, name: &str) -> anyhow::Result<PipelineDefinition> {
        Ok(block_on(self.registry.pipeline(name))?)
    }

    fn delete_pipeline(&self, name: &str) -> anyhow::Result<()> {
        Ok(block_on(self.registry.delete_pipeline(name))?)
    }
}

pub fn transforms(args: TransformsArgs) -> anyhow::Result<ExitCode> {
    let backend = args.target.open()?;
    match args.command {
        TransformsCommand::Upload {
            file,
            name,
            activate,
        } => {
            let wasm =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let uploaded = backend
                .upload(&name, wasm, activate)
                .with_context(|| format!("uploading {} as `{name}`", file.display()))?;
            println!(
                "{name} {} ({}, {} bytes){}",
                uploaded.version,
                uploaded.world,
                uploaded.size,
                if uploaded.active { ", active" } else { "" }
            );
        }
        TransformsCommand::List { name: Some(name) } => {
            let manifest = backend
                .manifest(&name)
                .with_context(|| format!("reading transform `{name}`"))?;
            for v in &manifest.versions {
                let mark = if manifest.active.as_ref() == Some(&v.version) {
                    "*"
                } else {
                    " "
                };
                let contract = v
                    .contract
                    .as_deref()
                    .map(|c| format!(", contract {c}"))
                    .unwrap_or_default();
                println!(
                    "{mark} {} {} {} bytes{contract}",
                    v.version, v.world, v.size
                );
            }
        }
        TransformsCommand::List { name: None } => {
            for transform in backend.list().context("listing transforms")? {
                println!("{}", summary(&transform));
            }
        }
        TransformsCommand::Activate { name, version } => {
            let manifest = backend
                .activate(&name, &version)
                .with_context(|| format!("activating `{name}` version {version}"))?;
            println!("{}", summary(&TransformSummary::from(&manifest)));
        }
        TransformsCommand::Rollback { name } => {
            let manifest = backend
                .rollback(&name)
                .with_context(|| format!("rolling back `{name}`"))?;
            println!("{}", summary(&TransformSummary::from(&manifest)));
        }
        TransformsCommand::Delete { name, version } => {
            let manifest = backend
                .delete_version(&name, &version)
                .with_context(|| format!("deleting `{name}` version {version}"))?;
            println!("{}", summary(&TransformSummary::from(&manifest)));
        }
        TransformsCommand::Shadow {
            name,
            version: Some(version),
            stop: false,
        } => {
            let manifest = backend
                .shadow(&name, &version)
                .with_context(|| format!("shadowing `{name}` with version {version}"))?;
            println!(
                "{} shadowed by {}",
                summary(&TransformSummary::from(&manifest)),
                manifest.shadow.as_deref().unwrap_or("none")
            );
        }
        TransformsCommand::Shadow { name, .. } => {
            let manifest = backend
                .stop_shadow(&name)
                .with_context(|| format!("stopping the shadow run of `{name}`"))?;
            println!("{}, no shadow", summary(&TransformSummary::from(&manifest)));
        }
        TransformsCommand::ShadowReport { name, json } => {
            let status = backend
                .shadow_status(&name)
                .with_context(|| format!("reading the shadow run of `{name}`"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", shadow_text(&status));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A shadow run's report as lines of text.
fn shadow_text(status: &ShadowStatus) -> String {
    let short = |v: &str| v.chars().take(12).collect::<String>();
    let Some(shadow) = &status.shadow else {
        return format!("{}: no shadow run\n", status.transform);
    };
    let mut text = format!(
        "{}: {} shadows the active {}\n",
        status.transform,
        short(shadow),
        status.active.as_deref().map_or("none".into(), short)
    );
    let Some(report) = &status.report else {
        text.push_str("no instance has reported yet\n");
        return text;
    };
    let kinds: Vec<String> = report
        .differ
        .iter()
        .map(|(kind, n)| format!("{n} {}", kind.as_str()))
        .collect();
    text.push_str(&format!(
        "instances {}\ncompared {}: {} the same, {} differ{}\nskipped {} ({} batches past the CPU budget); time in the shadow {} ms, in the active version {} ms\n",
        report.instances.join(", "),
        report.compared,
        report.same,
        report.differing(),
        if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) },
        report.skipped,
        report.skipped_batches,
        report.shadow_ms,
        report.active_ms,
    ));
    for sample in &report.samples {
        text.push_str(&format!(
            "{} partition {} offset {}: {}{}\n  active: {}\n  shadow: {}\n",
            sample.topic,
            sample.partition,
            sample.offset,
            sample.kind.as_str(),
            sample
                .path
                .as_deref()
                .map(|p| format!(" at {p}"))
                .unwrap_or_default(),
            sample.active,
            sample.shadow,
        ));
    }
    text
}

fn summary(transform: &TransformSummary) -> String {
    format!(
        "{} active {} ({} versions)",
        transform.name,
        transform.active.as_deref().unwrap_or("none"),
        transform.versions
    )
}

pub fn pipelines(args: PipelinesArgs) -> anyhow::Result<ExitCode> {
    let backend = args.target.open()?;
    match args.command {
        PipelinesCommand::Apply { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not valid JSON", file.display()))?;
            let applied = backend
                .apply_pipelines(&value)
                .with_context(|| format!("applying {}", file.display()))?;
            for name in applied {
                println!("applied {name}");
            }
        }
        PipelinesCommand::List => {
            for definition in backend.pipelines().context("listing pipelines")? {
                println!(
                    "{}: {} -> {} via {}",
                    definition.name,
                    definition.inputs.join(","),
                    definition.outputs.join(","),
                    definition.transform.name()
                );
            }
        }
        PipelinesCommand::Get { name } => {
            let definition = backend
                .pipeline(&name)
                .with_context(|| format!("reading pipeline `{name}`"))?;
            println!("{}", serde_json::to_string_pretty(&definition)?);
        }
        PipelinesCommand::Delete { name } => {
            backend
                .delete_pipeline(&name)
                .with_context(|| format!("deleting pipeline `{name}`"))?;
            println!("deleted {name}");
        }
        PipelinesCommand::Topology { topics, format } => {
            let pipelines = backend.pipelines().context("listing pipelines")?;
            let exports = match &topics {
                Some(path) => read_topics(path)?,
                None => Vec::new(),
            };
            let graph = topology(&pipelines, &exports, None);
            print!("{}", render(&graph, format)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
