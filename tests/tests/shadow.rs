//! Shadow runs against the real broker and real components: a running
//! worker also runs the shadow version on every batch, reports exactly
//! what it would change through the registry, produces nothing of it, is
//! unharmed by a shadow that traps, and stops shadowing when the shadow is
//! promoted or stopped, within the hot-reload bound.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_host::enrich::{PipelineDefinition, TransformRef};
use sluice_host::kafka::ensure_topic;
use sluice_host::pipeline::header;
use sluice_host::registry::{Registry, ShadowStatus};
use sluice_host::shadow::{Kind, MAX_SAMPLES, ShadowReport};
use sluice_host::storage::AzureCredentials;
use sluice_host::transforms::{Followed, TransformSource};
use sluice_tests::{
    EnrichWorker, block_on, broker, fresh_topic, guest, header_text, ids, produce_to, read_all,
    runtime,
};

/// How often the worker asks the registry, as a short `--reload-ms`.
const RELOAD: Duration = Duration::from_millis(100);
/// What the hot-reload tests allow a switch (`hot_reload.rs`).
const RELOAD_BOUND: Duration = Duration::from_secs(15);

/// A worker on transform `stay` of a fresh registry, following it, with
/// `v1` active and each of `others` uploaded; and its topics.
struct Setup {
    registry: Arc<Registry>,
    _dir: tempfile::TempDir,
    versions: Vec<String>,
    input: String,
    output: String,
    dead_letter: String,
    definition: PipelineDefinition,
}

impl Setup {
    fn new(guests: &[&str], limits: Value) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(
            Registry::open(dir.path().to_str().unwrap(), &AzureCredentials::default()).unwrap(),
        );
        let versions = guests
            .iter()
            .enumerate()
            .map(|(i, name)| {
                block_on(registry.upload(runtime(), "stay", Bytes::from(guest(name)), i == 0))
                    .unwrap()
                    .info
                    .version
            })
            .collect();
        let (input, output, dead_letter) = (
            fresh_topic("shadow-in"),
            fresh_topic("shadow-out"),
            fresh_topic("shadow-dlq"),
        );
        for topic in [&input, &output, &dead_letter] {
            ensure_topic(&broker(), topic, 1).unwrap();
        }
        let definition = PipelineDefinition::from_value(&json!({
            "name": fresh_topic("shadow"), "inputs": [input], "outputs": [output],
            "dead_letter": dead_letter, "transform": "stay", "batch_size": 100,
            "limits": limits,
        }))
        .unwrap();
        Setup {
            registry,
            _dir: dir,
            versions,
            input,
            output,
            dead_letter,
            definition,
        }
    }

    /// A worker following the registry as `sluice enrich` does, and where
    /// it shows its own shadow report.
    fn worker(&self) -> (EnrichWorker, Arc<Mutex<Option<ShadowReport>>>) {
        let source = TransformSource::registry(runtime().clone(), self.registry.clone());
        let followed = Followed::start_as(
            &source,
            &TransformRef::Active("stay".into()),
            RELOAD,
            "worker-1".into(),
        )
        .unwrap();
        let seen = Arc::new(Mutex::new(None));
        (
            EnrichWorker::following(&self.definition, followed, seen.clone()),
            seen,
        )
    }

    fn stamp(&self, version: usize) -> String {
        format!("stay@{}", &self.versions[version][..12])
    }

    /// The gathered report once `done` holds of it, within `within`.
    fn report_when(&self, within: Duration, done: impl Fn(&ShadowReport) -> bool) -> ShadowReport {
        let deadline = Instant::now() + within;
        loop {
            let status: ShadowStatus = block_on(self.registry.shadow_status("stay")).unwrap();
            if let Some(report) = status.report.as_ref().filter(|r| done(r)) {
                return report.clone();
            }
            assert!(Instant::now() < deadline, "report not reached: {status:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Booking `id`: a stay of `id % 20 + 1` days from 2017-08-01; `extra`
/// fields added.
fn booking(id: usize, extra: &Value) -> String {
    let days = id % 20 + 1;
    let mut value = json!({
        "id": id,
        "srch_ci": "2017-08-01",
        "srch_co": format!("2017-{:02}-{:02}", 8 + (days / 31), 1 + days % 31),
    });
    if let (Some(object), Some(more)) = (value.as_object_mut(), extra.as_object()) {
        object.extend(more.clone());
    }
    value.to_string()
}

/// The stays stay-category-v2 categorises differently: 11 to 14 days.
fn differs(id: usize) -> bool {
    (11..=14).contains(&(id % 20 + 1))
}

fn category(record: &sluice_host::record::KafkaRecord) -> String {
    let value: Value = serde_json::from_slice(record.value.as_deref().unwrap()).unwrap();
    value["stay_category"].as_str().unwrap().to_owned()
}

/// Waits until `seen` (the worker's own shadow report) satisfies `done`.
fn until_shadow(
    seen: &Mutex<Option<ShadowReport>>,
    within: Duration,
    what: &str,
    done: impl Fn(Option<&ShadowReport>) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        if done(seen.lock().unwrap().as_ref()) {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{what} not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Promise: a shadow run reports exactly the records the shadow version
/// would change (counts per kind, and the first of them as samples with
/// both outcomes and the first differing JSON path), and nothing of the
/// shadow reaches the output; promoting the shadow ends the shadow run on
/// the running worker within the hot-reload bound.
#[test]
fn a_shadow_that_changes_one_category_reports_exactly_the_records_that_differ() {
    const RECORDS: usize = 3_000;
    // Room for the shadow to run every batch: what is counted here is
    // every record (the CPU share is tried below).
    let setup = Setup::new(
        &["stay-category", "stay-category-v2"],
        json!({"shadow_cpu_percent": 1000}),
    );
    let values: Vec<String> = (0..RECORDS).map(|id| booking(id, &json!({}))).collect();
    produce_to(&broker(), &setup.input, 0, &values);
    block_on(setup.registry.shadow("stay", &setup.versions[1])).unwrap();
    let (worker, seen) = setup.worker();
    worker.wait_until(Duration::from_secs(120), "every record read", |t| {
        t.read == RECORDS as u64
    });

    let expected: Vec<usize> = (0..RECORDS).filter(|id| differs(*id)).collect();
    let report = setup.report_when(Duration::from_secs(30), |r| r.compared == RECORDS as u64);
    assert_eq!(report.instances, ["worker-1"]);
    assert_eq!(
        (report.active.as_str(), report.shadow.as_str()),
        (setup.versions[0].as_str(), setup.versions[1].as_str())
    );
    assert_eq!(
        report.differ,
        BTreeMap::from([(Kind::Records, expected.len() as u64)]),
        "only changed records, no drops or failures"
    );
    assert_eq!(report.same, (RECORDS - expected.len()) as u64);
    assert_eq!((report.skipped, report.skipped_batches), (0, 0));
    let sampled: Vec<i64> = report.samples.iter().map(|s| s.offset).collect();
    let first: Vec<i64> = expected
        .iter()
        .take(MAX_SAMPLES)
        .map(|id| *id as i64)
        .collect();
    assert_eq!(
        sampled, first,
        "the first differing records, and only those"
    );
    for sample in &report.samples {
        assert_eq!(sample.topic, setup.input);
        assert_eq!(sample.path.as_deref(), Some("/0/value/stay_category"));
        assert_eq!(
            sample.active["emit"][0]["value"]["stay_category"],
            "Standard extended stay"
        );
        assert_eq!(
            sample.shadow["emit"][0]["value"]["stay_category"],
            "Long stay"
        );
    }

    // Only the active version's records were produced.
    let out = read_all(&broker(), &setup.output);
    assert_eq!(out.len(), RECORDS);
    assert!(
        out.iter()
            .all(|r| header_text(r, header::TRANSFORM) == setup.stamp(0)),
        "every output made by the active version"
    );
    for (record, id) in out.iter().zip(ids(&out)) {
        if differs(id as usize) {
            assert_eq!(category(record), "Standard extended stay", "id {id}");
        }
    }
    let long = out.iter().filter(|r| category(r) == "Long stay").count();
    assert_eq!(long, (0..RECORDS).filter(|id| id % 20 + 1 >= 15).count());
    assert!(read_all(&broker(), &setup.dead_letter).is_empty());

    // Promote: the shadow version becomes the active one, the shadow run
    // ends on the running worker.
    block_on(setup.registry.activate("stay", &setup.versions[1])).unwrap();
    let ended = until_shadow(&seen, RELOAD_BOUND, "the shadow run ended", |r| r.is_none());
    produce_to(&broker(), &setup.input, 0, &[booking(10, &json!({}))]);
    worker.wait_until(Duration::from_secs(30), "the next record read", |t| {
        t.read == RECORDS as u64 + 1
    });
    let out = read_all(&broker(), &setup.output);
    let last = out.last().unwrap();
    assert_eq!(header_text(last, header::TRANSFORM), setup.stamp(1));
    assert_eq!(category(last), "Long stay", "v2 runs for real now");
    let status = block_on(setup.registry.shadow_status("stay")).unwrap();
    assert_eq!(status.shadow, None);
    worker.stop();
    eprintln!("shadow ended {ended:?} after the promotion");
}

/// Promise: a shadow that traps on every record costs only itself: the
/// active version's output is whole and untouched, nothing is
/// dead-lettered, the worker goes on, and the shadow keeps to its share of
/// CPU time (50% of the active version's, plus the one call in progress
/// when it is spent). Stopping the shadow ends it on the running worker
/// within the hot-reload bound.
#[test]
fn a_shadow_that_traps_on_every_record_leaves_the_active_output_untouched() {
    const RECORDS: usize = 1_000;
    let setup = Setup::new(&["stay-category", "misbehave"], json!({}));
    let values: Vec<String> = (0..RECORDS)
        .map(|id| booking(id, &json!({"do": "trap"})))
        .collect();
    produce_to(&broker(), &setup.input, 0, &values);
    block_on(setup.registry.shadow("stay", &setup.versions[1])).unwrap();
    let (worker, seen) = setup.worker();
    worker.wait_until(Duration::from_secs(120), "every record read", |t| {
        t.read == RECORDS as u64
    });
    let report = setup.report_when(Duration::from_secs(30), |r| {
        r.compared + r.skipped == RECORDS as u64
    });
    assert!(report.compared > 0, "{report:?}");
    assert_eq!(
        report.differ,
        BTreeMap::from([(Kind::ShadowFails, report.compared)]),
        "every record tried failed in the shadow alone"
    );
    assert!(
        report.shadow_ms <= report.active_ms / 2 + 1_000,
        "the shadow took {} ms beside the active version's {} ms",
        report.shadow_ms,
        report.active_ms
    );
    assert_eq!(
        report.samples[0].shadow["kind"], "trap",
        "{:?}",
        report.samples[0]
    );

    let out = read_all(&broker(), &setup.output);
    assert_eq!(out.len(), RECORDS, "the active output is whole");
    let ids = ids(&out);
    assert_eq!(
        ids,
        (0..RECORDS as u64).collect::<Vec<_>>(),
        "in order, once each"
    );
    assert!(
        out.iter()
            .all(|r| header_text(r, header::TRANSFORM) == setup.stamp(0))
    );
    assert!(read_all(&broker(), &setup.dead_letter).is_empty());

    block_on(setup.registry.stop_shadow("stay")).unwrap();
    let ended = until_shadow(&seen, RELOAD_BOUND, "the shadow run stopped", |r| {
        r.is_none()
    });
    produce_to(&broker(), &setup.input, 0, &[booking(1, &json!({}))]);
    worker.wait_until(Duration::from_secs(30), "the worker goes on", |t| {
        t.read == RECORDS as u64 + 1 && t.produced == RECORDS as u64 + 1
    });
    worker.stop();
    eprintln!("shadow stopped {ended:?} after the request");
}
