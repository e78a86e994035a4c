//! `sluice fetch`: records at given offsets, the command-line twin of seed
//! 000's ad hoc fetch page; optionally a dry run of a transform on them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sluice_host::kafka::{BoundedReader, ReadPlan, Start};
use sluice_host::parquet::{ValueColumn, kafka_batch};
use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::{GuestError, Limits};

use super::{Broker, TransformsDir};

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 0)]
    partition: i32,
    /// First offset to read.
    #[arg(long, default_value_t = 0)]
    offset: i64,
    /// Most records to return; never past the partition's end.
    #[arg(long, default_value_t = 10)]
    count: u64,
    /// json (one JSON line per record), csv or parquet (needs --out).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Dry run: show what this transformer would do with each record.
    #[arg(long)]
    transform: Option<String>,
    #[command(flatten)]
    broker: Broker,
    #[command(flatten)]
    transforms: TransformsDir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Json,
    Csv,
    Parquet,
}

pub fn run(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let plan = ReadPlan {
        topic: args.topic.clone(),
        group_id: "sluice-fetch".into(),
        start: Start::Offsets(BTreeMap::from([(args.partition, args.offset)])),
        max_per_partition: Some(args.count),
        offset_increment: BTreeMap::new(),
    };
    let mut reader = BoundedReader::open(&args.broker.config(), &plan)?;
    let mut records = Vec::new();
    while let Some(batch) = reader.next_batch(1000)? {
        records.extend(batch);
    }
    let outcomes = match &args.transform {
        Some(name) => {
            let runtime = crate::transforms::runtime()?;
            let transform = crate::transforms::load(&runtime, name, &args.transforms.dir())?;
            Some(
                transform
                    .transformer(Limits::default(), Arc::default())?
                    .process(&records),
            )
        }
        None => None,
    };
    let mut out: Box<dyn Write + Send> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    match args.format {
        Format::Json => write_json(&records, outcomes.as_deref(), &mut out)?,
        Format::Csv => write_csv(&records, &mut out)?,
        Format::Parquet => {
            if args.out.is_none() {
                bail!("--format parquet needs --out FILE");
            }
            let (batch, _) = kafka_batch(&records, ValueColumn::Raw, |_, o| o)?;
            let mut writer = parquet::arrow::ArrowWriter::try_new(out, batch.schema(), None)?;
            writer.write(&batch)?;
            writer.close()?;
        }
    }
    eprintln!(
        "{} records from {} partition {} starting at offset {}",
        records.len(),
        args.topic,
        args.partition,
        args.offset
    );
    Ok(ExitCode::SUCCESS)
}

fn text_or_json(bytes: Option<&[u8]>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => serde_json::from_slice(b)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned())),
    }
}

fn write_json(
    records: &[KafkaRecord],
    outcomes: Option<&[Result<Outcome, GuestError>]>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    for (i, record) in records.iter().enumerate() {
        let mut line = json!({
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp,
            "key": record.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()),
            "value": text_or_json(record.value.as_deref()),
        });
        if let Some(outcome) = outcomes.and_then(|o| o.get(i)) {
            line["outcome"] = match outcome {
                Ok(Outcome::Emit(records)) => {
                    json!({"emit": records.iter().map(|r| text_or_json(r.value.as_deref())).collect::<Vec<_>>()})
                }
                Ok(Outcome::Drop) => json!({"drop": true}),
                Ok(Outcome::Fail(reason)) => json!({"fail": reason}),
                Err(error) => json!({"error": error.to_string(), "kind": error.failure.kind()}),
            };
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// RFC 4180: fields with commas, quotes or line breaks are quoted.
fn write_csv(records: &[KafkaRecord], out: &mut dyn Write) -> anyhow::Result<()> {
    let field = |text: &str| {
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    };
    writeln!(out, "partition,offset,timestamp,key,value")?;
    for r in records {
        let text = |b: Option<&[u8]>| {
            b.map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        writeln!(
            out,
            "{},{},{},{},{}",
            r.partition,
            r.offset,
            r.timestamp.map(|t| t.to_string()).unwrap_or_default(),
            field(&text(r.key.as_deref())),
            field(&text(r.value.as_deref()))
        )?;
    }
    Ok(())
}
