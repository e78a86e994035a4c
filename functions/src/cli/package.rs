//! `sluice package --target azure|lambda --out DIR`: the zip a deployment
//! uploads. For Azure Functions, the custom-handler app of `functions/app/`
//! (host.json at the root, one folder per function with its function.json)
//! with the binary host.json starts; for AWS Lambda (`provided.al2023`), the
//! binary as `bootstrap`. Configuration files given are read and checked
//! first, so a bad file fails here, naming it, rather than at the first
//! invocation in the cloud.
//!
//! The zip is reproducible: entries in a fixed order with the zip format's
//! earliest timestamp, so the same inputs give the same bytes and
//! Terraform's hash of the package only changes when its content does.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;
use sluice_host::config::{Connections, read_topics};
use sluice_host::enrich::PipelineDefinition;
use zip::write::SimpleFileOptions;

/// The function app as checked in, in `functions/app/`; the package takes
/// it from there so it is written once.
const HOST_JSON: &str = include_str!("../../app/host.json");

/// Each function of the app, and the files it cannot run without: a
/// function whose files are not given is left out of the package, since its
/// trigger would only fail (every timer tick, every Kafka batch).
struct Function {
    name: &'static str,
    json: &'static str,
    needs: &'static [&'static str],
}

const FUNCTIONS: &[Function] = &[
    Function {
        name: "Api",
        json: include_str!("../../app/Api/function.json"),
        needs: &[],
    },
    Function {
        name: "Enrich",
        json: include_str!("../../app/Enrich/function.json"),
        needs: &[PIPELINE],
    },
    Function {
        name: "Export",
        json: include_str!("../../app/Export/function.json"),
        needs: &[TOPICS, CONNECTIONS],
    },
];

/// Names inside the package, which the deployed settings point at
/// (`SLUICE_TOPICS`, `SLUICE_CONNECTIONS`, `SLUICE_PIPELINE`,
/// `SLUICE_TRANSFORMS_DIR` in `infra/`).
const TOPICS: &str = "topics.json";
const CONNECTIONS: &str = "connections.json";
const PIPELINE: &str = "pipeline.json";
const TRANSFORMS: &str = "transforms";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// An Azure Functions custom-handler app (Linux).
    Azure,
    /// An AWS Lambda function on the `provided.al2023` runtime.
    Lambda,
}

#[derive(Debug, clap::Args)]
pub struct PackageArgs {
    /// Where the package runs.
    #[arg(long, value_enum)]
    target: Target,
    /// Folder the zip is written to (created if missing):
    /// `sluice-azure.zip` or `sluice-lambda.zip`.
    #[arg(long)]
    out: PathBuf,
    /// The Linux executable to package [default: this sluice binary].
    /// Build it with `cargo build --release -p sluice`.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// topics.json for the export (packaged as `topics.json`). The Export
    /// function is packaged when both it and --connections are given.
    #[arg(long)]
    topics: Option<PathBuf>,
    /// connections.json (packaged as `connections.json`).
    #[arg(long)]
    connections: Option<PathBuf>,
    /// The pipeline definition the Kafka-triggered Enrich function runs
    /// (packaged as `pipeline.json`, with the Enrich function; Azure only).
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// A folder of transform components (`.wasm`), packaged under
    /// `transforms/` for pipelines that name a transform.
    #[arg(long)]
    transforms: Option<PathBuf>,
}

/// One file of the package, read and checked.
struct Entry {
    name: String,
    bytes: Vec<u8>,
    executable: bool,
}

impl Entry {
    fn text(name: impl Into<String>, text: &str) -> Self {
        Entry {
            name: name.into(),
            bytes: text.as_bytes().to_vec(),
            executable: false,
        }
    }
}

pub fn run(args: PackageArgs) -> anyhow::Result<ExitCode> {
    let binary = match &args.binary {
        Some(path) => path.clone(),
        None => {
            if cfg!(debug_assertions) {
                tracing::warn!(
                    "packaging a debug build of sluice; deploy a release build \
                     (`cargo build --release -p sluice`)"
                );
            }
            std::env::current_exe().context("finding this sluice binary to package")?
        }
    };
    if args.target == Target::Lambda
        && let Some(pipeline) = &args.pipeline
    {
        bail!(
            "--pipeline {}: the Kafka-triggered Enrich function runs only on Azure \
             Functions; on AWS run `sluice enrich --pipeline FILE` as a worker instead",
            pipeline.display()
        );
    }
    // The small files first: a bad one is reported before a large binary
    // is read.
    let files = config_files(&args)?;
    let executable = read_binary(&binary, args.target)?;
    let mut entries = match args.target {
        Target::Azure => azure_app(executable, &files)?,
        Target::Lambda => vec![Entry {
            name: "bootstrap".into(),
            ..executable
        }],
    };
    entries.extend(files);
    let file_name = match args.target {
        Target::Azure => "sluice-azure.zip",
        Target::Lambda => "sluice-lambda.zip",
    };
    let zip_path = args.out.join(file_name);
    write_zip(&zip_path, &entries)?;
    let size = std::fs::metadata(&zip_path)
        .with_context(|| format!("reading {}", zip_path.display()))?
        .len();
    println!("{} ({})", zip_path.display(), human(size));
    for entry in &entries {
        let mode = if entry.executable {
            "rwxr-xr-x"
        } else {
            "rw-r--r--"
        };
        println!(
            "  {mode} {:>10}  {}",
            human(entry.bytes.len() as u64),
            entry.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The custom-handler app: host.json, the folder of each function whose
/// files are given, and the binary under the name host.json starts.
fn azure_app(executable: Entry, files: &[Entry]) -> anyhow::Result<Vec<Entry>> {
    let host: Value =
        serde_json::from_str(HOST_JSON).context("functions/app/host.json (built in)")?;
    let path = host
        .pointer("/customHandler/description/defaultExecutablePath")
        .and_then(Value::as_str)
        .context("functions/app/host.json (built in): no customHandler.description.defaultExecutablePath")?;
    let mut entries = vec![
        Entry::text("host.json", HOST_JSON),
        Entry {
            name: path.to_owned(),
            ..executable
        },
    ];
    for function in FUNCTIONS {
        let missing: Vec<&str> = function
            .needs
            .iter()
            .copied()
            .filter(|need| !files.iter().any(|f| f.name == *need))
            .collect();
        if !missing.is_empty() {
            let flags: Vec<String> = missing
                .iter()
                .map(|m| format!("--{}", m.trim_end_matches(".json")))
                .collect();
            println!(
                "function {} left out: it needs {} ({})",
                function.name,
                missing.join(" and "),
                flags.join(" ")
            );
            continue;
        }
        serde_json::from_str::<Value>(function.json)
            .with_context(|| format!("functions/app/{}/function.json (built in)", function.name))?;
        entries.push(Entry::text(
            format!("{}/function.json", function.name),
            function.json,
        ));
    }
    Ok(entries)
}

/// Reads the executable and checks it can run where it goes: a 64-bit
/// little-endian Linux ELF file, x86-64 for Azure Functions (its Linux
/// workers), x86-64 or arm64 for Lambda.
fn read_binary(path: &Path, target: Target) -> anyhow::Result<Entry> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading binary {}", path.display()))?;
    let not_elf = || {
        anyhow::anyhow!(
            "binary {}: not a 64-bit Linux executable (ELF); build sluice on Linux or \
             for a Linux target",
            path.display()
        )
    };
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err(not_elf());
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    let arch = match machine {
        0x3e => "x86_64",
        0xb7 => "arm64",
        _ => bail!(
            "binary {}: built for ELF machine {machine:#x}, neither x86-64 nor arm64",
            path.display()
        ),
    };
    if target == Target::Azure && arch != "x86_64" {
        bail!(
            "binary {}: built for {arch}; Azure Functions runs Linux apps on x86-64",
            path.display()
        );
    }
    if target == Target::Lambda {
        println!("binary: {arch} (the Lambda function's `architecture` must be {arch})");
    }
    Ok(Entry {
        name: String::new(),
        bytes,
        executable: true,
    })
}

/// The configuration files given, each read as the deployed app will read
/// it, under the names its settings point at.
fn config_files(args: &PackageArgs) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut add = |path: &Path, name: String| -> anyhow::Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        entries.push(Entry {
            name,
            bytes,
            executable: false,
        });
        Ok(())
    };
    if let Some(path) = &args.topics {
        read_topics(path).context("checking the topics file")?;
        add(path, TOPICS.into())?;
    }
    if let Some(path) = &args.connections {
        Connections::read(path).context("checking the connections file")?;
        add(path, CONNECTIONS.into())?;
    }
    if let Some(path) = &args.pipeline {
        PipelineDefinition::read(path)
            .map_err(anyhow::Error::from)
            .and_then(|definition| Ok(definition.check_for_trigger()?))
            .context("checking the pipeline file")?;
        add(path, PIPELINE.into())?;
    }
    if let Some(dir) = &args.transforms {
        for path in components(dir)? {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: file name is not UTF-8", path.display()))?;
            add(&path, format!("{TRANSFORMS}/{name}"))?;
        }
    }
    Ok(entries)
}

/// The `.wasm` files directly in `dir`, in name order, each a component
/// (what the runtime loads), so a core module or a stray file is refused now.
fn components(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let listing = std::fs::read_dir(dir)
        .with_context(|| format!("reading transforms folder {}", dir.display()))?;
    let mut files = Vec::new();
    for item in listing {
        let path = item
            .with_context(|| format!("reading transforms folder {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        bail!("transforms folder {}: no .wasm files in it", dir.display());
    }
    files.sort();
    for path in &files {
        let mut preamble = [0u8; 8];
        let read = File::open(path).and_then(|mut f| f.read_exact(&mut preamble));
        // A component's preamble is `\0asm`, a version, then layer 1
        // (a core module has layer 0).
        if read.is_err() || &preamble[..4] != b"\0asm" || preamble[6..8] != [1, 0] {
            bail!("{}: not a WebAssembly component", path.display());
        }
    }
    Ok(files)
}

/// Writes the zip beside its final name and renames it into place, so a
/// failure never leaves a half-written package that looks complete.
fn write_zip(path: &Path, entries: &[Entry]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial = path.with_extension("zip.partial");
    let result = (|| -> anyhow::Result<()> {
        let file = File::create(&partial)?;
        let mut zip = zip::ZipWriter::new(BufWriter::new(file));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let mut folders = std::collections::BTreeSet::new();
        for entry in entries {
            if let Some((folder, _)) = entry.name.rsplit_once('/')
                && folders.insert(folder.to_owned())
            {
                zip.add_directory(folder, options.unix_permissions(0o755))?;
            }
            let mode = if entry.executable { 0o755 } else { 0o644 };
            // Large files (a debug build) need the zip64 extension.
            let large = entry.bytes.len() as u64 >= u32::MAX as u64;
            zip.start_file(
                entry.name.as_str(),
                options.unix_permissions(mode).large_file(large),
            )?;
            zip.write_all(&entry.bytes)?;
        }
        zip.finish()?.flush()?;
        Ok(())
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(error.context(format!("writing {}", partial.display())));
    }
    std::fs::rename(&partial, path)
        .with_context(|| format!("moving {} to {}", partial.display(), path.display()))
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / (1 << 10) as f64),
        b => format!("{b} B"),
    }
}
