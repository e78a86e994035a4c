//! What a shadow run costs a worker: bookings through the `Enricher` (the
//! stay-category component, routing, trace headers) to the records ready to
//! produce, in steps of the pipeline's batch size, with no shadow, with
//! stay-category-v2 shadowing it within the default share of CPU time
//! (50%), and shadowing every batch (`shadow_cpu_percent` 1000). No broker:
//! the broker would cap every variant alike (`ARCHITECTURE.md`, the test
//! broker). Each variant runs in a process of its own; the shadowed ones
//! must account for every record (compared or skipped) and the one that
//! shadows every batch must compare them all.
//!
//! `cargo bench -p sluice-tests --bench shadow_overhead [-- RECORDS]`
//! (200,000 bookings; 2,000 under `cargo test --all-targets`; needs
//! `scripts/build-guests.sh` first).

use std::time::Instant;

use serde_json::json;
use sluice_host::enrich::{Enricher, PipelineDefinition};
use sluice_host::record::KafkaRecord;
use sluice_host::shadow::Shadowing;
use sluice_tests::bench::{self, Child, Stopwatch, Table, run_variant};

/// `batch_size`'s default: records per poll and per guest call.
const STEP: usize = 500;

fn main() {
    if let Some(child) = Child::from_args() {
        return variant(&child);
    }
    let count = bench::count(200_000, 2_000);
    let dir = tempfile::tempdir().expect("temp folder");
    eprintln!("generating {count} bookings...");
    let bookings = bench::expedia_values(count, 5);
    let input = dir.path().join("bookings.frames");
    bench::write_frames(&input, bookings.iter().map(Vec::as_slice));
    let input = input.to_str().expect("UTF-8").to_owned();

    let mut table = Table::on_cpu_time(format!(
        "A worker's CPU path with and without a shadow ({count} bookings, steps of {STEP})"
    ));
    for (name, peer) in [
        ("no shadow", None),
        ("shadow, 50% share", Some("no shadow")),
        ("shadow on every batch", Some("no shadow")),
    ] {
        let measured = run_variant(name, &[("input", input.clone())]);
        if let Some(compared) = measured.extra.get("compared") {
            let skipped = measured.extra.get("skipped").copied().unwrap_or_default();
            assert_eq!(
                (compared + skipped) as u64,
                measured.records,
                "{name}: every record compared or skipped"
            );
            eprintln!("{name}: {compared} compared, {skipped} skipped");
        }
        table.row(name, Some(&measured), peer);
    }
    table.print();
}

fn variant(child: &Child) {
    let records: Vec<KafkaRecord> = bench::read_frames(&child.path("input"))
        .into_iter()
        .enumerate()
        .map(|(offset, value)| KafkaRecord::from_value("bookings", offset as i64, value))
        .collect();
    let (count, bytes) = (
        records.len() as u64,
        records.iter().map(KafkaRecord::payload_len).sum::<usize>() as u64,
    );
    let cpu_percent = match child.variant.as_str() {
        "no shadow" => None,
        "shadow, 50% share" => Some(50),
        "shadow on every batch" => Some(1000),
        other => panic!("no variant {other}"),
    };
    let definition = PipelineDefinition::from_value(&json!({
        "name": "bench", "inputs": ["bookings"], "outputs": ["out"], "dead_letter": "dlq",
        "transform": "stay-category",
        "limits": {"shadow_cpu_percent": cpu_percent.unwrap_or(50)},
    }))
    .expect("definition");
    let mut enricher =
        Enricher::new(definition, &sluice_tests::transform("stay-category")).expect("enricher");
    if cpu_percent.is_some() {
        enricher
            .set_shadow(Some(Shadowing {
                transform: sluice_tests::transform("stay-category-v2"),
                sink: None,
            }))
            .expect("shadow");
    }
    let mut watch = Stopwatch::default();
    let mut outputs = 0;
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let step: Vec<KafkaRecord> = records.by_ref().take(STEP).collect();
        let step = watch.time(|| enricher.process(step, Instant::now()));
        outputs += step.produce.len() as u64;
    }
    assert_eq!(outputs, count, "one output per booking");
    let extra: std::collections::BTreeMap<String, f64> = enricher
        .shadow_report()
        .map(|report| {
            [
                ("compared".to_owned(), report.compared as f64),
                ("skipped".to_owned(), report.skipped as f64),
            ]
            .into()
        })
        .unwrap_or_default();
    if cpu_percent == Some(1000) {
        assert_eq!(
            extra.get("compared"),
            Some(&(count as f64)),
            "every batch shadowed"
        );
    }
    child.report_with(count, bytes, outputs, &watch, extra);
}
