//! `sluice transform --wasm FILE`: JSON lines in, one outcome line out per
//! input line, in order.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::{Limits, Transformer};

#[derive(Debug, clap::Args)]
pub struct TransformArgs {
    /// The transformer component (.wasm).
    #[arg(long)]
    wasm: PathBuf,
    /// Pipeline metadata the guest can read, as key=value (repeatable).
    #[arg(long = "metadata", value_parser = super::parse_pair)]
    metadata: Vec<(String, String)>,
    /// Records per guest call.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Memory cap per instance, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mb: usize,
    /// Deadline per batch, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    deadline_ms: u64,
}

pub fn run(args: TransformArgs) -> anyhow::Result<ExitCode> {
    let runtime = crate::transforms::runtime()?;
    let transform = runtime
        .load_file(&args.wasm)
        .with_context(|| format!("loading {}", args.wasm.display()))?;
    let limits = Limits {
        memory_bytes: args.memory_mb << 20,
        deadline: std::time::Duration::from_millis(args.deadline_ms),
    };
    let mut transformer = transform.transformer(limits, Arc::new(args.metadata))?;
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut batch = Vec::with_capacity(args.batch_size);
    let mut line_number = 0i64;
    for line in stdin.lines() {
        let line = line.context("reading stdin")?;
        line_number += 1;
        if line.trim().is_empty() {
            continue;
        }
        // The offset is the line number, so errors point at the input line.
        batch.push(KafkaRecord::from_value(
            "stdin",
            line_number,
            line.into_bytes(),
        ));
        if batch.len() >= args.batch_size.max(1) {
            write_outcomes(&mut transformer, &batch, &mut out)?;
            batch.clear();
        }
    }
    write_outcomes(&mut transformer, &batch, &mut out)?;
    out.flush().context("writing stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn write_outcomes(
    transformer: &mut Transformer,
    batch: &[KafkaRecord],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    for result in transformer.process(batch) {
        let line = match result {
            Ok(Outcome::Emit(records)) => {
                let values: Vec<Value> = records
                    .iter()
                    .map(|r| {
                        let value = r.value.as_deref().map_or(Value::Null, as_json);
                        match &r.topic {
                            Some(topic) => json!({"topic": topic, "value": value}),
                            None => value,
                        }
                    })
                    .collect();
                json!({ "emit": values })
            }
            Ok(Outcome::Drop) => json!({ "drop": true }),
            Ok(Outcome::Fail(reason)) => json!({ "fail": reason }),
            Err(error) => json!({ "error": error.to_string(), "kind": error.failure.kind() }),
        };
        serde_json::to_writer(&mut *out, &line).context("writing stdout")?;
        out.write_all(b"\n").context("writing stdout")?;
    }
    Ok(())
}

/// A value as JSON when it is JSON, else as a string.
fn as_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}
