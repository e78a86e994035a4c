//! `sluice demo`: the main job end to end on a local broker: generate
//! bookings, categorise them into `expedia_ext`, summarise them, and export
//! `expedia_ext` to Parquet files as the timer would. Topic names carry a
//! run id because a broker keeps what earlier runs wrote.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::ensure;
use sluice_host::pipeline::Routing;

use super::{Broker, TransformsFrom};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Bookings to generate.
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Folder for the summary's and the export's Parquet files.
    #[arg(long, default_value = "sluice-out")]
    out: PathBuf,
    #[command(flatten)]
    broker: Broker,
    #[command(flatten)]
    transforms: TransformsFrom,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let config = args.broker.config()?;
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let input = format!("expedia.{run_id}");
    let output = format!("expedia_ext.{run_id}");
    let started = Instant::now();

    super::generate::produce_expedia(&config, &input, args.records, args.seed, 3)?;
    eprintln!("loaded {} generated bookings into {input}", args.records);

    let transforms = args.transforms.source()?;
    let categorise = transforms.load_named("stay-category", None)?;
    let routing = Routing {
        outputs: vec![output.clone()],
        dead_letter: format!("{output}.dlq"),
    };
    let stats = super::run::run_transform(&config, &categorise, &input, routing, 1000)?;
    eprintln!(
        "stay-category: read {}, produced {} to {output}, dead-lettered {}",
        stats.read, stats.produced, stats.dead_lettered
    );
    ensure!(
        stats.read == args.records && stats.produced + stats.dead_lettered == stats.read,
        "records went missing: generated {}, read {}, produced {}, dead-lettered {}",
        args.records,
        stats.read,
        stats.produced,
        stats.dead_lettered
    );

    let summarise = transforms.load_named("stay-summary", None)?;
    let summary =
        super::aggregate::aggregate_to_parquet(&config, &summarise, &output, &args.out, 5000)?;
    println!(
        "\nStay categories of {} bookings ({output}):\n",
        summary.read
    );
    print!("{}", summary.table());
    println!("\nsummary written to {}", summary.path.display());

    let files = export(&args, &config, &transforms, &output, run_id)?;
    let registry = register(&args, &transforms, &input, &output)?;
    println!(
        "\n{output} exported as the timer would (topics.json and connections.json in {}):",
        args.out.display()
    );
    for (key, rows) in &files {
        println!(
            "  {} ({rows} rows)",
            args.out.join("export").join(key).display()
        );
    }
    // The binary as it was started, so the command works without `sluice`
    // on the PATH (scripts/demo.sh runs it through cargo).
    let sluice = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "sluice".into());
    println!(
        "\nThe records in the browser (fetch page and topology), with a key of your own \
         (32 characters or more):\n  \
         KEY=$(openssl rand -hex 20)\n  \
         {sluice} serve --topics {out}/topics.json --connections {out}/connections.json \\\n      \
         --registry {registry} --admin-key \"$KEY\" --api-key \"$KEY\"\n  \
         then http://127.0.0.1:8080/ (topic {output}, with the stay-category dry run) and \
         http://127.0.0.1:8080/topology, with that key in the key field",
        out = args.out.display()
    );
    println!("\n({:.1} s in all)", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// Registers what the demo ran in the registry the printed `sluice serve`
/// uses: its two transforms (when they came from a folder) and the
/// pipeline that categorised the bookings, so the topology page shows the
/// whole flow and the fetch page's dry run finds `stay-category`. Returns
/// the registry's URL.
fn register(
    args: &DemoArgs,
    transforms: &sluice_host::transforms::TransformSource,
    input: &str,
    output: &str,
) -> anyhow::Result<String> {
    use anyhow::Context;
    use sluice_host::enrich::PipelineDefinition;
    use sluice_host::registry::Registry;
    use sluice_host::storage::AzureCredentials;
    use std::sync::Arc;
    let registry = match transforms.registry_store() {
        Some(registry) => registry.clone(),
        None => {
            let url = args.out.join("registry").to_string_lossy().into_owned();
            Arc::new(Registry::open(&url, &AzureCredentials::default())?)
        }
    };
    let runtime = transforms.runtime().clone();
    for name in ["stay-category", "stay-summary"] {
        let Some(file) = transforms.component_file(name)? else {
            continue; // already in the registry the demo ran from
        };
        let wasm = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let (registry, runtime) = (registry.clone(), runtime.clone());
        sluice_host::io::wait(async move {
            registry
                .upload(&runtime, name, bytes::Bytes::from(wasm), true)
                .await
        })
        .with_context(|| format!("registering {name}"))?;
    }
    let pipeline = PipelineDefinition::from_value(&serde_json::json!({
        "name": "stay-category",
        "inputs": [input],
        "outputs": [output],
        "dead_letter": format!("{output}.dlq"),
        "transform": "stay-category",
    }))?;
    let stored = registry.clone();
    sluice_host::io::wait(async move { stored.put_pipeline(&pipeline).await })
        .context("registering the demo's pipeline")?;
    Ok(registry.url().to_owned())
}

/// The scheduled export of `topic`, through the same entry point the timer
/// calls, from files written as a user would write them; the stored files
/// and their row counts.
fn export(
    args: &DemoArgs,
    config: &sluice_host::kafka::KafkaConfig,
    transforms: &sluice_host::transforms::TransformSource,
    topic: &str,
    run_id: u64,
) -> anyhow::Result<Vec<(String, u64)>> {
    use anyhow::Context;
    use sluice_host::config::{Connections, read_topics};
    use sluice_host::export::{RunSettings, export_topics};
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let topics_file = args.out.join("topics.json");
    let entries =
        serde_json::json!([{"topic": topic, "group_id": format!("sluice-demo-export-{run_id}")}]);
    std::fs::write(&topics_file, serde_json::to_string_pretty(&entries)?)
        .with_context(|| format!("writing {}", topics_file.display()))?;
    let connections_file = args.out.join("connections.json");
    let connections = serde_json::json!({
        "bootstrap_servers": config.bootstrap_servers,
        "kafka_properties": config.properties,
        "storage_url": args.out.join("export").to_string_lossy(),
    });
    std::fs::write(
        &connections_file,
        serde_json::to_string_pretty(&connections)?,
    )
    .with_context(|| format!("writing {}", connections_file.display()))?;
    let run = export_topics(
        &read_topics(&topics_file)?,
        &Connections::read(&connections_file)?,
        &RunSettings::default(),
        transforms,
        &|_, _| {},
    )?;
    let mut files = Vec::new();
    for (name, result) in run.results {
        let report = result.with_context(|| format!("exporting {name}"))?;
        files.extend(report.files.into_iter().map(|f| (f.key, f.rows)));
    }
    Ok(files)
}
