//! `sluice transforms ...` and `sluice pipelines ...`: the registry from the
//! command line, straight against its URL (a folder or Azure storage).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use clap::Subcommand;
use serde_json::Value;
use sluice_host::enrich::PipelineDefinition;
use sluice_host::registry::{Manifest, Registry};
use sluice_host::storage::AzureCredentials;

/// Where the registry is.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Registry URL: a folder, `file://…`, `az://container/dir` or
    /// `abfss://filesystem@account.dfs.core.windows.net/dir`.
    #[arg(long = "registry", env = "SLUICE_REGISTRY")]
    pub url: Option<String>,
    /// Azure storage account (seed 000's azure_storage_account_name).
    #[arg(long, env = "SLUICE_AZURE_ACCOUNT")]
    pub azure_account: Option<String>,
    /// Azure storage account key.
    #[arg(long, env = "SLUICE_AZURE_KEY", hide_env_values = true)]
    pub azure_key: Option<String>,
    /// Blob endpoint, for Azurite or a sovereign cloud.
    #[arg(long, env = "SLUICE_AZURE_ENDPOINT")]
    pub azure_endpoint: Option<String>,
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
        };
        let registry = Registry::open(url, &credentials)
            .with_context(|| format!("opening the registry at {url}"))?;
        Ok(Some(Arc::new(registry)))
    }

    pub fn require(&self) -> anyhow::Result<Arc<Registry>> {
        self.open()?
            .context("no registry: give --registry URL or set SLUICE_REGISTRY")
    }
}

#[derive(Debug, clap::Args)]
pub struct TransformsArgs {
    #[command(subcommand)]
    command: TransformsCommand,
    #[command(flatten)]
    registry: RegistryArgs,
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
}

#[derive(Debug, clap::Args)]
pub struct PipelinesArgs {
    #[command(subcommand)]
    command: PipelinesCommand,
    #[command(flatten)]
    registry: RegistryArgs,
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
}

fn io() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")
}

pub fn transforms(args: TransformsArgs) -> anyhow::Result<ExitCode> {
    let registry = args.registry.require()?;
    let io = io()?;
    match args.command {
        TransformsCommand::Upload {
            file,
            name,
            activate,
        } => {
            let wasm =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let runtime = crate::transforms::runtime()?;
            let uploaded = io
                .block_on(registry.upload(&runtime, &name, Bytes::from(wasm), activate))
                .with_context(|| format!("uploading {} as `{name}`", file.display()))?;
            println!(
                "{name} {} ({}, {} bytes){}",
                uploaded.info.version,
                uploaded.info.world,
                uploaded.info.size,
                if activate { ", active" } else { "" }
            );
        }
        TransformsCommand::List { name: Some(name) } => {
            let manifest = io.block_on(registry.manifest(&name))?;
            for v in &manifest.versions {
                let mark = if manifest.active.as_ref() == Some(&v.version) {
                    "*"
                } else {
                    " "
                };
                println!("{mark} {} {} {} bytes", v.version, v.world, v.size);
            }
        }
        TransformsCommand::List { name: None } => {
            for manifest in io.block_on(registry.list())? {
                println!("{}", summary(&manifest));
            }
        }
        TransformsCommand::Activate { name, version } => {
            println!(
                "{}",
                summary(&io.block_on(registry.activate(&name, &version))?)
            );
        }
        TransformsCommand::Rollback { name } => {
            println!("{}", summary(&io.block_on(registry.rollback(&name))?));
        }
        TransformsCommand::Delete { name, version } => {
            println!(
                "{}",
                summary(&io.block_on(registry.delete_version(&name, &version))?)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(manifest: &Manifest) -> String {
    format!(
        "{} active {} ({} versions)",
        manifest.name,
        manifest.active.as_deref().unwrap_or("none"),
        manifest.versions.len()
    )
}

pub fn pipelines(args: PipelinesArgs) -> anyhow::Result<ExitCode> {
    let registry = args.registry.require()?;
    let io = io()?;
    match args.command {
        PipelinesCommand::Apply { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not valid JSON", file.display()))?;
            for definition in
                definitions(&value).with_context(|| format!("in {}", file.display()))?
            {
                io.block_on(registry.put_pipeline(&definition))?;
                println!("applied {}", definition.name);
            }
        }
        PipelinesCommand::List => {
            for definition in io.block_on(registry.pipelines())? {
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
            let definition = io.block_on(registry.pipeline(&name))?;
            println!("{}", serde_json::to_string_pretty(&definition)?);
        }
        PipelinesCommand::Delete { name } => {
            io.block_on(registry.delete_pipeline(&name))?;
            println!("deleted {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One definition or a list of them, all checked before any is applied.
pub fn definitions(value: &Value) -> anyhow::Result<Vec<PipelineDefinition>> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                PipelineDefinition::from_value(item).with_context(|| format!("entry [{i}]"))
            })
            .collect(),
        single => Ok(vec![PipelineDefinition::from_value(single)?]),
    }
}
