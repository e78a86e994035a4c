//! The enrichment's CPU path without a broker: polled records through the
//! `Enricher` (join off and on, the stay-category component, routing,
//! trace headers) to the records ready to produce, in steps of the
//! pipeline's batch size as the worker polls them. Beside it the same job
//! in native Rust (the stay rules compiled in, the same join and headers:
//! what Sluice would be with no WebAssembly and no framework) and in Python
//! (json + the category rules, as the workers Sluice replaces). Each
//! variant runs in a process of its own and writes, per output record, its
//! id, category and traceparent; all must agree, and the two Rust variants
//! must produce identical records.
//!
//! `cargo bench -p sluice-tests --bench enrich_transform [-- RECORDS]`
//! (1,000,000 bookings; 2,000 under `cargo test --all-targets`; needs
//! `scripts/build-guests.sh` first).

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_host::enrich::{Enricher, MEMBERS_HEADER, Merged, PipelineDefinition, RawObject};
use sluice_host::kafka::ProduceRecord;
use sluice_host::pipeline::{TraceContext, header};
use sluice_host::record::{Header, KafkaRecord};
use sluice_host::runtime::content_hash;
use sluice_tests::bench::{self, CheckWriter, Child, Stopwatch, Table, run_python, run_variant};

const FIRST_TIMESTAMP: i64 = 1_764_547_200_000;
/// The pipeline's inputs: bookings, and with the join a record per booking
/// from a second topic, arriving `LAG` records after its booking.
const BOOKINGS: &str = "expedia";
const HOTELS: &str = "hotels";
const OUTPUT: &str = "expedia_ext";
const LAG: usize = 100;
/// `batch_size`'s default: records per poll and per guest call.
const STEP: usize = 500;

fn main() {
    if let Some(child) = Child::from_args() {
        return variant(&child);
    }
    let count = bench::count(1_000_000, 2_000);
    let dir = tempfile::tempdir().expect("temp folder");
    eprintln!("generating {count} bookings...");
    let bookings = bench::expedia_values(count, 5);
    // The stage every output is stamped with, as the Rust and Python
    // peers need it for the same headers.
    let stage = format!(
        "stay-category@{}",
        &content_hash(&sluice_tests::guest("stay-category"))[..12]
    );
    let path = |name: &str| dir.path().join(name).to_str().expect("UTF-8").to_owned();
    let stride = bench::check_stride(count);

    let mut tables = Vec::new();
    for join in ["off", "on"] {
        let input = path(&format!("join-{join}.frames"));
        let frames = inputs(&bookings, join == "on");
        bench::write_frames(
            std::path::Path::new(&input),
            frames.iter().map(Vec::as_slice),
        );
        drop(frames);
        let args = |name: &str| {
            vec![
                ("input", input.clone()),
                ("join", join.to_owned()),
                ("stage", stage.clone()),
                ("stride", stride.to_string()),
                ("check", path(&format!("{name}-{join}.check"))),
                ("exact", path(&format!("{name}-{join}.exact"))),
            ]
        };
        let sluice = run_variant("sluice", &args("sluice"));
        let native = run_variant("native", &args("native"));
        let python = run_python("enrich_python.py", &args("python"));
        let agree = |theirs: &str| {
            bench::assert_agree(
                &format!("join {join}: sluice and {theirs}"),
                std::path::Path::new(&path(&format!("sluice-{join}.check"))),
                std::path::Path::new(&path(&format!("{theirs}-{join}.check"))),
                |a, b| a == b,
            )
        };
        let lines = agree("native");
        bench::assert_agree(
            &format!("join {join}: sluice and native records"),
            std::path::Path::new(&path(&format!("sluice-{join}.exact"))),
            std::path::Path::new(&path(&format!("native-{join}.exact"))),
            |a, b| a == b,
        );
        if python.is_some() {
            agree("python");
        }
        eprintln!(
            "join {join}: the variants agree on {lines} sampled outputs of {}",
            sluice.outputs
        );

        let mut table = Table::on_cpu_time(format!(
            "enrichment, join {join}: {} input records -> stay-category -> records to produce, one process each",
            sluice.records
        ));
        table.row("native Rust", Some(&native), None);
        table.row("python (json + rules)", python.as_ref(), None);
        table.row(
            "sluice (Enricher::process)",
            Some(&sluice),
            Some("native Rust"),
        );
        let ratio = |table: &Table, peer: &str| table.ratio("sluice (Enricher::process)", peer);
        let vs_python = ratio(&table, "python (json + rules)");
        table.target_ratio(
            "sluice vs native Rust",
            ratio(&table, "native Rust"),
            0.8,
            false,
        );
        table.target_ratio("sluice vs python", vs_python, 5.0, false);
        tables.push(table);
    }
    for table in &tables {
        table.print();
    }
}

/// The input frames: each a topic byte (0 bookings, 1 hotels) and the
/// value. Offsets count per topic, timestamps 1 ms apart in this order.
fn inputs(bookings: &[Vec<u8>], join: bool) -> Vec<Vec<u8>> {
    let frame = |topic: u8, value: &[u8]| {
        let mut f = vec![topic];
        f.extend_from_slice(value);
        f
    };
    let hotel = |i: usize| {
        let value = json!({"id": i, "content": {"hotel_name": format!("Hotel {}", i % 2_500), "stars": i % 5 + 1}});
        frame(1, value.to_string().as_bytes())
    };
    let mut frames = Vec::with_capacity(bookings.len() * 2);
    for (i, booking) in bookings.iter().enumerate() {
        frames.push(frame(0, booking));
        if join && i >= LAG {
            frames.push(hotel(i - LAG));
        }
    }
    if join {
        frames.extend((bookings.len().saturating_sub(LAG)..bookings.len()).map(hotel));
    }
    frames
}

/// The input as the worker polls it: records with their coordinates, in
/// steps of the batch size.
fn polled(input: &std::path::Path) -> (Vec<Vec<KafkaRecord>>, u64, u64) {
    let mut offsets = [0i64; 2];
    let mut bytes = 0u64;
    let records: Vec<KafkaRecord> = bench::read_frames(input)
        .into_iter()
        .enumerate()
        .map(|(position, frame)| {
            let (topic, value) = frame.split_first().expect("a topic byte");
            let topic = usize::from(*topic);
            let offset = offsets[topic];
            offsets[topic] += 1;
            bytes += value.len() as u64;
            KafkaRecord {
                topic: [BOOKINGS, HOTELS][topic].to_owned(),
                partition: 0,
                offset,
                timestamp: Some(FIRST_TIMESTAMP + position as i64),
                key: Some(offset.to_string().into_bytes()),
                value: Some(value.to_vec()),
                headers: Vec::new(),
            }
        })
        .collect();
    let count = records.len() as u64;
    let mut steps = Vec::new();
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        steps.push(records.by_ref().take(STEP).collect());
    }
    (steps, count, bytes)
}

fn variant(child: &Child) {
    let join = child.arg("join") == "on";
    let (steps, records, bytes) = polled(&child.path("input"));
    let stride = child.number("stride");
    let mut check = CheckWriter::create(&child.path("check"));
    let mut exact = CheckWriter::create(&child.path("exact"));
    let mut outputs = 0u64;
    let mut write = |produced: &[ProduceRecord]| {
        for record in produced {
            if outputs.is_multiple_of(stride as u64) {
                check.line(&check_line(record));
                exact.line(&hex::encode(digest(record)));
            }
            outputs += 1;
        }
    };
    let mut watch = Stopwatch::default();
    match child.variant.as_str() {
        "sluice" => {
            let definition = definition(join);
            let transform = sluice_tests::transform("stay-category");
            let mut enricher = Enricher::new(definition, &transform).expect("enricher");
            for step in steps {
                let step = watch.time(|| enricher.process(step, Instant::now()));
                write(&step.produce);
            }
            assert_eq!(enricher.pending(), 0, "every id joined");
        }
        "native" => {
            let mut native = Native::new(child.arg("stage"), join);
            for step in steps {
                let produced = watch.time(|| native.process(step));
                write(&produced);
            }
        }
        other => panic!("no variant {other}"),
    }
    child.report(records, bytes, outputs, &watch);
}

fn definition(join: bool) -> PipelineDefinition {
    let mut definition = json!({
        "name": "bench",
        "inputs": [BOOKINGS],
        "outputs": [OUTPUT],
        "transform": "stay-category",
        "dead_letter": "expedia.dlq",
        "batch_size": STEP,
    });
    if join {
        definition["inputs"] = json!([BOOKINGS, HOTELS]);
        definition["join"] = json!({"key": "id", "timeout_ms": 30_000});
    }
    PipelineDefinition::from_value(&definition).expect("a valid definition")
}

/// `id category traceparent` of an output record, what every variant
/// (Python's included) must agree on.
fn check_line(record: &ProduceRecord) -> String {
    let value: Value =
        serde_json::from_slice(record.value.as_deref().unwrap_or_default()).expect("JSON output");
    let traceparent = record
        .headers
        .iter()
        .find(|h| h.key == sluice_host::pipeline::TRACEPARENT)
        .and_then(|h| std::str::from_utf8(h.value.as_deref()?).ok())
        .unwrap_or_default();
    format!(
        "{}\t{}\t{traceparent}",
        value["id"],
        value["stay_category"].as_str().unwrap_or("-")
    )
}

/// Everything of a record to produce, for the two Rust variants to match.
fn digest(record: &ProduceRecord) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(format!(
        "{}\n{:?}\n{:?}\n{:?}\n",
        record.topic, record.partition, record.timestamp, record.key
    ));
    hash.update(record.value.as_deref().unwrap_or_default());
    for h in &record.headers {
        hash.update(format!("\n{}={:?}", h.key, h.value));
    }
    hash.finalize().into()
}

/// A join member: the record and its value's fields.
type Part = (KafkaRecord, RawObject);

/// The same pipeline written by hand in Rust: the stay rules called
/// directly, the join kept in a map and merged as Sluice merges (fields as
/// spans of the records' text), the same headers.
struct Native {
    stage: String,
    join: bool,
    /// Per waiting id, its booking and its hotel record.
    pending: HashMap<String, [Option<Part>; 2]>,
}

impl Native {
    fn new(stage: &str, join: bool) -> Native {
        Native {
            stage: stage.to_owned(),
            join,
            pending: HashMap::new(),
        }
    }

    fn process(&mut self, records: Vec<KafkaRecord>) -> Vec<ProduceRecord> {
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            if !self.join {
                self.transform(record, &mut out);
                continue;
            }
            let (text, object) =
                RawObject::parse(record.value.as_deref().unwrap_or_default()).expect("an object");
            let id = match serde_json::from_str(object.get(text, "id").expect("an id")) {
                Ok(Value::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(e) => panic!("id: {e}"),
            };
            let slot = usize::from(record.topic == HOTELS);
            let parts = self.pending.entry(id.clone()).or_default();
            parts[slot] = Some((record, object));
            if parts.iter().all(Option::is_some)
                && let Some(parts) = self.pending.remove(&id)
            {
                self.transform(merge(parts.into_iter().flatten().collect()), &mut out);
            }
        }
        out
    }

    fn transform(&self, input: KafkaRecord, out: &mut Vec<ProduceRecord>) {
        let value =
            stay_rules::enrich(input.value.as_deref().unwrap_or_default()).expect("a booking");
        let mut headers = input.headers.clone();
        headers.push(Header {
            key: header::TRANSFORM.to_owned(),
            value: Some(self.stage.clone().into_bytes()),
        });
        TraceContext::for_processing(&input, &self.stage).stamp(&mut headers);
        out.push(ProduceRecord {
            timestamp: input.timestamp,
            topic: OUTPUT.to_owned(),
            partition: None,
            key: input.key,
            value: Some(value),
            headers,
        });
    }
}

/// The Python workers' merge: top-level fields in input order, later inputs
/// winning, `content` objects merged field by field; the record stands as
/// the last member, with every member named in a header.
fn merge(parts: Vec<Part>) -> KafkaRecord {
    let members: Vec<String> = parts
        .iter()
        .map(|(r, _)| format!("{}/{}/{}", r.topic, r.partition, r.offset))
        .collect();
    let mut value = Vec::new();
    let mut merged = Merged::new();
    for (index, (record, object)) in parts.iter().enumerate() {
        let text = std::str::from_utf8(record.value.as_deref().unwrap_or_default()).expect("UTF-8");
        merged.add(object, text, (index > 0).then_some("content"));
    }
    merged.write(&mut value);
    drop(merged);
    let (mut key, mut timestamp, mut headers, mut last) = (None, None, Vec::new(), None);
    for (record, _) in parts {
        key = key.or(record.key.clone());
        timestamp = timestamp.max(record.timestamp);
        headers.extend(record.headers.iter().cloned());
        last = Some(record);
    }
    headers.push(Header {
        key: MEMBERS_HEADER.to_owned(),
        value: Some(members.join(",").into_bytes()),
    });
    let last = last.expect("two parts");
    KafkaRecord {
        topic: last.topic,
        partition: last.partition,
        offset: last.offset,
        timestamp,
        key,
        value: Some(value),
        headers,
    }
}
