//! Enrichment pipelines against the real broker: the worker in-process,
//! consumer groups, joins, timeouts, poison records, committed offsets.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_host::enrich::{EnrichStats, MEMBERS_HEADER, MISSING_HEADER, PipelineDefinition};
use sluice_host::generate::{ExpediaGenerator, StayMix};
use sluice_host::kafka::{
    CommitMode, Forgotten, GroupConsumer, GroupStart, KafkaConfig, ensure_topic,
};
use sluice_host::pipeline::header;
use sluice_host::record::KafkaRecord;
use sluice_tests::{
    EnrichWorker, broker, fresh_topic, header_text, independent, plan, produce_to, read_all,
    transform,
};

struct Worker;

impl Worker {
    fn start(definition: &PipelineDefinition) -> EnrichWorker {
        EnrichWorker::start(definition, transform(definition.transform.name()), None)
    }
}

struct Topics {
    inputs: Vec<String>,
    output: String,
    dead_letter: String,
}

fn topics(inputs: usize, partitions: i32) -> Topics {
    let config = broker();
    let topics = Topics {
        inputs: (0..inputs).map(|_| fresh_topic("enrich-in")).collect(),
        output: fresh_topic("enrich-out"),
        dead_letter: fresh_topic("enrich-dlq"),
    };
    for topic in topics
        .inputs
        .iter()
        .chain([&topics.output, &topics.dead_letter])
    {
        ensure_topic(&config, topic, partitions).unwrap();
    }
    topics
}

fn definition(topics: &Topics, transform: &str, extra: Value) -> PipelineDefinition {
    let mut value = json!({
        "name": fresh_topic("pipeline"),
        "inputs": topics.inputs,
        "outputs": [topics.output],
        "transform": transform,
        "dead_letter": topics.dead_letter,
        "batch_size": 100,
    });
    for (k, v) in extra.as_object().unwrap() {
        value[k] = v.clone();
    }
    PipelineDefinition::from_value(&value).unwrap()
}

/// Waits until `topic`s together hold `count` records (or fails after 60 s).
fn wait_for(config: &KafkaConfig, topics: &[&str], count: usize) {
    let start = Instant::now();
    loop {
        let have: usize = topics.iter().map(|t| read_all(config, t).len()).sum();
        if have >= count {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "only {have} of {count} records arrived in {topics:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Per partition of `topic`: `(partition, the group's committed offset,
/// the high watermark)`.
fn committed(config: &KafkaConfig, topic: &str, group: &str) -> Vec<(i32, i64, i64)> {
    let reader =
        sluice_host::kafka::BoundedReader::open(config, &plan(topic, group, json!({}))).unwrap();
    reader
        .ranges()
        .iter()
        .map(|r| (r.partition, r.start, r.high))
        .collect()
}

/// Waits until `group` has committed `topic`'s one partition up to `end`
/// (or fails after 90 s).
fn wait_committed(config: &KafkaConfig, topic: &str, group: &str, end: i64) {
    let start = Instant::now();
    loop {
        let positions = committed(config, topic, group);
        if positions.iter().all(|(_, at, _)| *at >= end) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{topic}: committed {positions:?}, not {end}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs `pipeline`'s worker on `config` until `done`, then stops it; its
/// totals, and when each of its steps ended.
fn run_until(
    config: &KafkaConfig,
    pipeline: &PipelineDefinition,
    done: impl FnOnce(),
) -> (EnrichStats, Vec<Instant>) {
    use sluice_host::enrich::{Enricher, WorkerOptions, run_worker};
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let (config, pipeline, stop) = (config.clone(), pipeline.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut enricher =
                Enricher::new(pipeline.clone(), &transform(pipeline.transform.name())).unwrap();
            let options = WorkerOptions {
                poll_wait: Duration::from_millis(50),
                ..WorkerOptions::default()
            };
            let mut ends = Vec::new();
            let stats = run_worker(&config, &mut enricher, options, &stop, |_, _| {
                ends.push(Instant::now())
            })
            .unwrap();
            (stats, ends)
        })
    };
    done();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    worker.join().unwrap()
}

fn json_of(record: &KafkaRecord) -> Value {
    serde_json::from_slice(record.value.as_deref().unwrap()).unwrap()
}

/// `values` over `partitions` partitions by index; the `i`-th one's event
/// time is `at + i` ms, so records of one id in several inputs have the
/// same time however slowly they are produced (joins run in event time).
fn spread(config: &KafkaConfig, topic: &str, values: &[Value], partitions: i32, at: i64) {
    for p in 0..partitions {
        let (indexes, part): (Vec<usize>, Vec<String>) = values
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as i32 % partitions == p)
            .map(|(i, v)| (i, v.to_string()))
            .unzip();
        sluice_tests::produce_stamped(config, topic, p, &part, |k| Some(at + indexes[k] as i64));
    }
}

/// Now, in ms since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[test]
fn expedia_to_expedia_ext_accounts_for_every_record() {
    let config = broker();
    let topics = topics(1, 3);
    let bookings: Vec<Value> = ExpediaGenerator::new(21, StayMix::default())
        .take(3000)
        .collect();
    spread(&config, &topics.inputs[0], &bookings, 3, now_ms());
    let garbage: Vec<String> = (0..3).map(|i| format!("garbage {i}")).collect();
    produce_to(&config, &topics.inputs[0], 1, &garbage);
    let pipeline = definition(&topics, "stay-category", json!({}));
    let worker = Worker::start(&pipeline);
    wait_for(&config, &[&topics.output, &topics.dead_letter], 3003);
    let stats = worker.stop();
    assert_eq!((stats.read, stats.dead_lettered), (3003, 3));

    let expected: HashMap<i64, &'static str> = bookings
        .iter()
        .map(|b| (b["id"].as_i64().unwrap(), independent::category(b)))
        .collect();
    let mut seen = HashMap::new();
    for record in read_all(&config, &topics.output) {
        let value = json_of(&record);
        assert!(header_text(&record, header::TRANSFORM).starts_with("stay-category@"));
        let id = value["id"].as_i64().unwrap();
        assert_eq!(value["stay_category"], expected[&id], "booking {id}");
        *seen.entry(id).or_insert(0) += 1;
    }
    let mut dead: Vec<String> = read_all(&config, &topics.dead_letter)
        .iter()
        .map(|record| {
            assert_eq!(header_text(record, header::ERROR_KIND), "decode");
            assert_eq!(header_text(record, header::SOURCE_TOPIC), topics.inputs[0]);
            String::from_utf8(record.value.clone().unwrap()).unwrap()
        })
        .collect();
    dead.sort();
    assert_eq!(dead, garbage, "the values that are not JSON, unchanged");
    assert_eq!(seen.len(), expected.len(), "every booking accounted for");
    assert!(
        seen.values().all(|n| *n == 1),
        "none twice in one clean run"
    );

    // Everything was committed: a worker of the group would read nothing.
    assert_committed_to_the_end(&config, &topics.inputs, &pipeline.group_id());
}

/// Every partition of `topics` committed to its end by `group`.
fn assert_committed_to_the_end(config: &KafkaConfig, topics: &[String], group: &str) {
    for topic in topics {
        let reader = sluice_host::kafka::BoundedReader::open(
            config,
            &sluice_tests::plan(topic, group, json!({})),
        )
        .unwrap();
        for range in reader.ranges() {
            assert_eq!(
                range.start, range.high,
                "{topic} partition {}: committed {} of {}",
                range.partition, range.start, range.high
            );
        }
    }
}

fn join_definition(topics: &Topics, on_timeout: &str, timeout_ms: u64) -> PipelineDefinition {
    definition(
        topics,
        "misbehave",
        json!({"join": {"key": "id", "timeout_ms": timeout_ms, "on_timeout": on_timeout}}),
    )
}

/// Ids `0..complete` go to both inputs; `complete..total` only to the first.
fn produce_join_inputs(config: &KafkaConfig, topics: &Topics, complete: usize, total: usize) {
    let first: Vec<Value> = (0..total)
        .map(|id| json!({"id": id, "source": "a", "content": {"text": format!("text {id}")}}))
        .collect();
    let second: Vec<Value> = (0..complete)
        .map(|id| json!({"id": id, "author": format!("user{id}"), "content": {"sentiment": "ok"}}))
        .collect();
    let at = now_ms();
    spread(config, &topics.inputs[0], &first, 2, at);
    spread(config, &topics.inputs[1], &second, 2, at);
}

/// The ETL workers' language worker: posts and their authors joined by id, then
/// the language-detect guest sets `content.language`.
#[test]
fn a_two_topic_join_merges_each_id_once_all_inputs_arrived() {
    let config = broker();
    let topics = topics(2, 2);
    let sentences = [
        (
            "en",
            "The weather was lovely this morning so we walked along the river to the old market",
        ),
        (
            "fr",
            "Nous avons passé une excellente soirée avec nos amis dans ce petit restaurant du quartier",
        ),
        (
            "de",
            "Am Wochenende fahren wir mit dem Zug in die Berge und wandern dort zwei Tage lang",
        ),
        (
            "es",
            "Mañana por la tarde vamos a visitar a mis abuelos que viven en un pueblo cerca del mar",
        ),
    ];
    let posts: Vec<Value> = (0..40)
        .map(|id| json!({"id": id, "source": "posts", "content": {"text": sentences[id % 4].1}}))
        .collect();
    let authors: Vec<Value> = (0..40)
        .map(|id| json!({"id": id, "author": format!("user{id}"), "content": {"sentiment": "ok"}}))
        .collect();
    let at = now_ms();
    spread(&config, &topics.inputs[0], &posts, 2, at);
    spread(&config, &topics.inputs[1], &authors, 2, at);
    let pipeline = definition(
        &topics,
        "language-detect",
        json!({"join": {"key": "id", "timeout_ms": 30_000}}),
    );
    let worker = Worker::start(&pipeline);
    wait_for(&config, &[&topics.output], 40);
    let stats = worker.stop();
    assert_eq!((stats.read, stats.joined, stats.incomplete), (80, 40, 0));
    let mut ids = Vec::new();
    for record in read_all(&config, &topics.output) {
        let mut value = json_of(&record);
        let id = value["id"].as_u64().unwrap() as usize;
        let confidence = value["content"]
            .as_object_mut()
            .unwrap()
            .remove("language_confidence")
            .unwrap();
        assert!(confidence.as_f64().unwrap() > 0.5, "{confidence}");
        assert_eq!(
            value,
            json!({"id": id, "source": "posts", "author": format!("user{id}"),
                   "content": {"text": sentences[id % 4].1, "sentiment": "ok",
                               "language": sentences[id % 4].0}})
        );
        assert_eq!(header_text(&record, MEMBERS_HEADER).split(',').count(), 2);
        assert!(header_text(&record, header::TRANSFORM).starts_with("language-detect@"));
        ids.push(id);
    }
    ids.sort();
    assert_eq!(ids, (0..40).collect::<Vec<_>>());
}

/// 20 ids complete, 10 never get their second half; the timeout is short.
/// The grace is long enough that the first poll of one input arriving
/// seconds after the other's (a loaded machine, a slow broker) does not
/// give up ids whose other half is on its way: that is what the grace is
/// for, and what these tests do not try.
fn run_timeout_case(on_timeout: &str) -> (Topics, PipelineDefinition, EnrichStats) {
    let config = broker();
    let topics = topics(2, 2);
    produce_join_inputs(&config, &topics, 20, 30);
    let pipeline = definition(
        &topics,
        "misbehave",
        json!({"join": {"key": "id", "timeout_ms": 500, "grace_ms": 5_000,
                        "on_timeout": on_timeout}}),
    );
    let worker = Worker::start(&pipeline);
    wait_for(&config, &[&topics.output], 20);
    worker.wait_until(Duration::from_secs(60), "10 ids given up", |t| {
        t.incomplete >= 10
    });
    (topics, pipeline, worker.stop())
}

#[test]
fn on_timeout_drop_discards_incomplete_ids_and_commits_them() {
    let (topics, pipeline, stats) = run_timeout_case("drop");
    assert_eq!(
        (stats.joined, stats.incomplete, stats.dropped),
        (20, 10, 10)
    );
    let config = broker();
    assert_eq!(read_all(&config, &topics.output).len(), 20);
    assert!(read_all(&config, &topics.dead_letter).is_empty());
    // Given up is finished: the group does not read them again.
    assert_committed_to_the_end(&config, &topics.inputs, &pipeline.group_id());
}

#[test]
fn on_timeout_dead_letter_sends_each_arrived_record_with_the_reason() {
    let (topics, _, stats) = run_timeout_case("dead_letter");
    assert_eq!(
        (stats.joined, stats.incomplete, stats.dead_lettered),
        (20, 10, 10)
    );
    let config = broker();
    let dead = read_all(&config, &topics.dead_letter);
    let mut ids: Vec<u64> = dead
        .iter()
        .map(|r| json_of(r)["id"].as_u64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, (20..30).collect::<Vec<_>>());
    for record in &dead {
        assert_eq!(header_text(record, header::ERROR_KIND), "join-timeout");
        let reason = header_text(record, header::ERROR_REASON);
        assert!(
            reason.contains(&format!(
                "nothing arrived from {} within 500 ms",
                topics.inputs[1]
            )),
            "{reason}"
        );
        assert_eq!(header_text(record, header::SOURCE_TOPIC), topics.inputs[0]);
    }
}

#[test]
fn on_timeout_emit_partial_transforms_what_arrived() {
    let (topics, _, stats) = run_timeout_case("emit_partial");
    assert_eq!((stats.joined, stats.incomplete), (20, 10));
    let config = broker();
    let out = read_all(&config, &topics.output);
    assert_eq!(out.len(), 30);
    let partial: BTreeMap<u64, &KafkaRecord> = out
        .iter()
        .filter(|r| r.headers.iter().any(|h| h.key == MISSING_HEADER))
        .map(|r| (json_of(r)["id"].as_u64().unwrap(), r))
        .collect();
    assert_eq!(
        partial.keys().copied().collect::<Vec<_>>(),
        (20..30).collect::<Vec<_>>()
    );
    for record in partial.values() {
        assert_eq!(header_text(record, MISSING_HEADER), topics.inputs[1]);
        assert!(json_of(record).get("author").is_none());
    }
}

/// Poison records through `guest` (misbehave or its Python port): each bad
/// one dead-lettered with what went wrong, the rest produced in order. A
/// Python guest is also asked to raise, with the exception line expected
/// as the reason.
fn poison_records_are_dead_lettered_while_the_rest_flows(guest: &str, raises: Option<&str>) {
    let config = broker();
    let topics = topics(1, 1);
    let mut values: Vec<String> = (0..30).map(|i| json!({"i": i}).to_string()).collect();
    values[5] = "this is not json".to_owned();
    values[12] = json!({"do": "trap"}).to_string();
    values[20] = json!({"do": "loop"}).to_string();
    values[25] = json!({"do": "fail", "reason": "no hotel"}).to_string();
    values[3] = json!({"do": "metadata", "i": 3}).to_string();
    let mut poisoned = vec![5, 12, 20, 25];
    if raises.is_some() {
        values[7] = json!({"do": "raise"}).to_string();
        poisoned.push(7);
    }
    produce_to(&config, &topics.inputs[0], 0, &values);
    let pipeline = definition(
        &topics,
        guest,
        json!({"limits": {"deadline_ms": 300}, "batch_size": 10,
               "metadata": {"team": "search"}}),
    );
    let worker = Worker::start(&pipeline);
    wait_for(&config, &[&topics.output, &topics.dead_letter], 30);
    let stats = worker.stop();
    assert_eq!(
        (stats.read, stats.produced, stats.dead_lettered),
        (30, 30 - poisoned.len() as u64, poisoned.len() as u64)
    );

    let out: Vec<Value> = read_all(&config, &topics.output)
        .iter()
        .map(json_of)
        .collect();
    assert_eq!(
        out[3],
        json!({"team": "search"}),
        "the guest sees the metadata"
    );
    let out: Vec<i64> = out.iter().map(|v| v["i"].as_i64().unwrap_or(3)).collect();
    let expected: Vec<i64> = (0..30).filter(|i| !poisoned.contains(i)).collect();
    assert_eq!(out, expected, "the rest flows, in order");

    let dead: HashMap<i64, KafkaRecord> = read_all(&config, &topics.dead_letter)
        .into_iter()
        .map(|r| (header_text(&r, header::SOURCE_OFFSET).parse().unwrap(), r))
        .collect();
    let kind = |offset: i64| header_text(&dead[&offset], header::ERROR_KIND).to_owned();
    let reason = |offset: i64| header_text(&dead[&offset], header::ERROR_REASON).to_owned();
    assert_eq!(kind(5), "decode");
    assert!(reason(5).contains("value is not JSON"), "{}", reason(5));
    assert_eq!(dead[&5].value.as_deref(), Some(&b"this is not json"[..]));
    assert_eq!(kind(12), "trap");
    assert!(reason(12).contains("asked to trap"), "{}", reason(12));
    assert_eq!(kind(20), "deadline");
    assert_eq!(kind(25), "rejected");
    assert_eq!(reason(25), "no hotel");
    if let Some(raised) = raises {
        assert_eq!(kind(7), "rejected");
        assert_eq!(reason(7), raised, "the traceback's last line");
    }
    for record in dead.values() {
        assert!(header_text(record, header::TRANSFORM).starts_with(&format!("{guest}@")));
        assert_eq!(header_text(record, header::SOURCE_PARTITION), "0");
    }
}

#[test]
fn poison_records_are_dead_lettered_while_the_rest_flows_rust() {
    poison_records_are_dead_lettered_while_the_rest_flows("misbehave", None);
}

#[test]
fn poison_records_are_dead_lettered_while_the_rest_flows_python() {
    poison_records_are_dead_lettered_while_the_rest_flows(
        "misbehave-py",
        Some("ValueError: asked to raise at offset 7"),
    );
}

/// W3C Trace Context goes on through a pipeline: an output continues its
/// input's trace with a span of its own, a dead-lettered record too, and an
/// input without one starts a trace.
#[test]
fn outputs_and_dead_letters_continue_the_input_trace() {
    use sluice_host::kafka::{ProduceRecord, Producer};
    use sluice_host::pipeline::{TRACEPARENT, TraceContext};
    use sluice_host::record::Header;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let config = broker();
    let topics = topics(1, 1);
    let record = |value: Value, traced: bool| ProduceRecord {
        timestamp: None,
        topic: topics.inputs[0].clone(),
        partition: Some(0),
        key: None,
        value: Some(value.to_string().into_bytes()),
        headers: if traced {
            vec![Header {
                key: TRACEPARENT.into(),
                value: Some(PARENT.as_bytes().to_vec()),
            }]
        } else {
            Vec::new()
        },
    };
    Producer::new(&config)
        .unwrap()
        .send_all(&[
            record(json!({"i": 0}), true),
            record(json!({"i": 1}), false),
            record(json!({"do": "fail", "reason": "no"}), true),
        ])
        .unwrap();
    let worker = Worker::start(&definition(&topics, "misbehave", json!({})));
    wait_for(&config, &[&topics.output, &topics.dead_letter], 3);
    worker.stop();

    let context = |r: &KafkaRecord| {
        let traceparents: Vec<&str> = r
            .headers
            .iter()
            .filter(|h| h.key == TRACEPARENT)
            .map(|h| std::str::from_utf8(h.value.as_deref().unwrap()).unwrap())
            .collect();
        assert_eq!(traceparents.len(), 1, "one traceparent: {traceparents:?}");
        TraceContext::parse(traceparents[0]).expect("a valid traceparent")
    };
    let parent = TraceContext::parse(PARENT).unwrap();
    let out = read_all(&config, &topics.output);
    assert_eq!(out.len(), 2);
    let traced = context(&out[0]);
    assert_eq!(
        traced.trace_id, parent.trace_id,
        "the input's trace goes on"
    );
    assert_ne!(traced.span_id, parent.span_id, "in a span of its own");
    assert_ne!(context(&out[1]).trace_id, parent.trace_id, "a new trace");
    let dead = read_all(&config, &topics.dead_letter);
    assert_eq!(dead.len(), 1);
    assert_eq!(context(&dead[0]).trace_id, parent.trace_id);
}

/// A backlog read long after it was written joins by when things happened,
/// not by when the worker read them: members 100 ms apart join, members
/// 3 s apart time out, although all of them arrive at once.
#[test]
fn a_backlog_joins_in_event_time_as_the_live_stream_would_have() {
    let config = broker();
    let topics = topics(2, 1);
    let at = now_ms() - 60_000;
    let ids: Vec<i64> = (0..20).collect();
    let first: Vec<String> = ids.iter().map(|id| json!({"id": id}).to_string()).collect();
    let second: Vec<String> = ids
        .iter()
        .map(|id| json!({"id": id, "second": true}).to_string())
        .collect();
    let gap = |id: i64| if id % 2 == 0 { 100 } else { 3_000 };
    sluice_tests::produce_stamped(&config, &topics.inputs[0], 0, &first, |i| {
        Some(at + i as i64 * 1_000)
    });
    sluice_tests::produce_stamped(&config, &topics.inputs[1], 0, &second, |i| {
        Some(at + i as i64 * 1_000 + gap(i as i64))
    });
    let pipeline = join_definition(&topics, "dead_letter", 1_000);
    let worker = Worker::start(&pipeline);
    wait_for(&config, &[&topics.output, &topics.dead_letter], 30);
    let stats = worker.stop();
    assert_eq!((stats.joined, stats.incomplete), (10, 20), "{stats:?}");
    let mut joined: Vec<i64> = read_all(&config, &topics.output)
        .iter()
        .map(|r| json_of(r)["id"].as_i64().unwrap())
        .collect();
    joined.sort();
    assert_eq!(joined, (0..20).step_by(2).collect::<Vec<_>>());
    let timed_out: BTreeMap<i64, usize> =
        read_all(&config, &topics.dead_letter)
            .iter()
            .fold(BTreeMap::new(), |mut m, r| {
                *m.entry(json_of(r)["id"].as_i64().unwrap()).or_insert(0) += 1;
                m
            });
    assert!(
        timed_out.iter().all(|(id, n)| id % 2 == 1 && *n == 2),
        "each half of every odd id given up: {timed_out:?}"
    );
    // The joined records keep their event time (the later member's).
    for record in read_all(&config, &topics.output) {
        let id = json_of(&record)["id"].as_i64().unwrap();
        assert_eq!(record.timestamp, Some(at + id * 1_000 + 100));
    }
}

/// A second worker joins the group while ids wait in the first one's join:
/// the rebalance takes partitions from the first, which forgets what was
/// waiting (uncommitted), and whoever owns the partitions then reads those
/// records again. Every id still joins; none times out or is lost.
#[test]
fn a_second_worker_joining_mid_join_loses_no_waiting_record() {
    let config = broker();
    let topics = topics(2, 4);
    let first: Vec<Value> = (0..40).map(|id| json!({"id": id, "half": 1})).collect();
    let second: Vec<Value> = (0..40).map(|id| json!({"id": id, "half": 2})).collect();
    let at = now_ms();
    spread(&config, &topics.inputs[0], &first, 4, at);
    let pipeline = join_definition(&topics, "dead_letter", 60_000);
    let one = Worker::start(&pipeline);
    one.wait_until(Duration::from_secs(60), "the first halves read", |t| {
        t.read >= 40
    });
    assert!(
        read_all(&config, &topics.output).is_empty(),
        "still waiting"
    );
    let two = Worker::start(&pipeline);
    // tansu completes a join after about half the session timeout (10 s).
    std::thread::sleep(Duration::from_secs(7));
    spread(&config, &topics.inputs[1], &second, 4, at + 1_000);
    wait_for(&config, &[&topics.output], 40);
    let (a, b) = (one.stop(), two.stop());
    let mut joined: Vec<i64> = read_all(&config, &topics.output)
        .iter()
        .map(|r| json_of(r)["id"].as_i64().unwrap())
        .collect();
    joined.sort();
    joined.dedup();
    assert_eq!(joined, (0..40).collect::<Vec<_>>(), "{a:?} {b:?}");
    assert!(read_all(&config, &topics.dead_letter).is_empty());
    assert!(b.read > 0, "the second worker took partitions: {b:?}");
}

/// A group on the cooperative protocol (`cooperative-sticky`, which tansu
/// runs): the first member reads `kept` and `taken` (one partition each),
/// finishes some records, and a second member subscribed to `taken` only
/// joins, so the group moves exactly `taken` to it.
struct Cooperative {
    config: KafkaConfig,
    group: String,
    kept: String,
    taken: String,
    first: GroupConsumer,
}

impl Cooperative {
    fn start() -> Cooperative {
        let config = broker()
            .with("partition.assignment.strategy", "cooperative-sticky")
            .with("session.timeout.ms", "6000");
        let (kept, taken) = (fresh_topic("coop-kept"), fresh_topic("coop-taken"));
        for topic in [&kept, &taken] {
            ensure_topic(&config, topic, 1).unwrap();
            let values: Vec<String> = (0..10).map(|i| json!({"i": i}).to_string()).collect();
            produce_to(&config, topic, 0, &values);
        }
        let group = fresh_topic("coop-group");
        let topics = [kept.clone(), taken.clone()];
        let first =
            GroupConsumer::subscribe(&config, &group, &topics, GroupStart::Earliest).unwrap();
        Cooperative {
            config,
            group,
            kept,
            taken,
            first,
        }
    }

    /// Polls the first member until it has `count` records.
    fn read(&mut self, count: usize) -> Vec<KafkaRecord> {
        let start = Instant::now();
        let mut records = Vec::new();
        while records.len() < count {
            assert!(start.elapsed() < Duration::from_secs(60), "{records:?}");
            records.extend(self.first.poll(100, Duration::from_millis(100)).records);
        }
        records
    }

    /// Starts the second member (reading `second_reads` records in a
    /// thread) and polls the first until the group takes `taken` from it: what the
    /// first member was told to forget, and the records it got meanwhile.
    fn rebalance(&mut self, second_reads: usize) -> (Forgotten, Vec<KafkaRecord>, Second) {
        let second = Second::start(&self.config, &self.group, &self.taken, second_reads);
        let start = Instant::now();
        let mut polled = Vec::new();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no rebalance reached the first member"
            );
            let poll = self.first.poll(100, Duration::from_millis(100));
            polled.extend(poll.records);
            if let Some(forgotten) = poll.forgotten {
                return (forgotten, polled, second);
            }
        }
    }
}

/// The second member: polls `topic` until it has `count` records (or 60 s
/// passed), marking each finished, then commits.
struct Second(std::thread::JoinHandle<Vec<KafkaRecord>>);

impl Second {
    fn start(config: &KafkaConfig, group: &str, topic: &str, count: usize) -> Second {
        let mut consumer =
            GroupConsumer::subscribe(config, group, &[topic.to_owned()], GroupStart::Earliest)
                .unwrap();
        Second(std::thread::spawn(move || {
            let start = Instant::now();
            let mut records = Vec::new();
            while records.len() < count && start.elapsed() < Duration::from_secs(60) {
                let polled = consumer.poll(100, Duration::from_millis(100));
                let locators: Vec<_> = polled.records.iter().map(KafkaRecord::locator).collect();
                consumer.finished(&locators);
                records.extend(polled.records);
            }
            consumer.commit(CommitMode::Sync).unwrap();
            records
        }))
    }

    fn records(self) -> Vec<KafkaRecord> {
        self.0.join().unwrap()
    }
}

fn offsets(records: &[KafkaRecord], topic: &str) -> Vec<i64> {
    records
        .iter()
        .filter(|r| r.topic == topic)
        .map(|r| r.offset)
        .collect()
}

/// Under the cooperative protocol a revoke takes only the partitions it
/// lists; the kept partition goes on from where it was, so the records
/// polled from it stay unfinished and hold its commit back. Forgetting
/// them, as an eager revoke does (the protocol this worker once insisted
/// on), would let the commit pass them while they are never read again.
#[test]
fn a_cooperative_revoke_keeps_the_unfinished_records_of_the_partitions_kept() {
    let mut group = Cooperative::start();
    let (kept, taken) = (group.kept.clone(), group.taken.clone());
    let first = group.read(20);
    let finished: Vec<_> = first
        .iter()
        .filter(|r| (r.topic == kept && r.offset < 5) || (r.topic == taken && r.offset < 3))
        .map(KafkaRecord::locator)
        .collect();
    group.first.finished(&finished);
    group.first.commit(CommitMode::Sync).unwrap();

    let (forgotten, polled, second) = group.rebalance(7);
    assert_eq!(
        forgotten,
        Forgotten::partitions([(taken.as_str(), 0)]),
        "only the partition taken, so the protocol is cooperative"
    );
    assert!(polled.is_empty(), "nothing new was produced: {polled:?}");
    assert_eq!(
        group.first.unfinished(),
        5,
        "the kept partition's 5..9 wait"
    );

    // The kept partition goes on after what was polled, not from the commit.
    let values: Vec<String> = (10..15).map(|i| json!({"i": i}).to_string()).collect();
    produce_to(&group.config, &kept, 0, &values);
    let later = group.read(5);
    assert_eq!(offsets(&later, &kept), (10..15).collect::<Vec<_>>());
    let rest: Vec<_> = first
        .iter()
        .chain(&later)
        .filter(|r| r.topic == kept && r.offset >= 5)
        .map(KafkaRecord::locator)
        .collect();
    group.first.finished(&rest);
    group.first.commit(CommitMode::Sync).unwrap();

    // The partition taken is read by its new owner from the commit.
    let taken_over = second.records();
    assert_eq!(offsets(&taken_over, &taken), (3..10).collect::<Vec<_>>());
    assert_eq!(committed(&group.config, &kept, &group.group), [(0, 15, 15)]);
    assert_eq!(
        committed(&group.config, &taken, &group.group),
        [(0, 10, 10)]
    );
}

/// A consumer that rewinds on a rebalance (a join's) reads the kept
/// partition again from its lowest unfinished offset: what it held there is
/// reported forgotten, and comes again, once.
#[test]
fn a_rewinding_consumer_reads_a_kept_partition_again_from_its_lowest_unfinished_offset() {
    let mut group = Cooperative::start();
    group.first.rewind_on_rebalance();
    let (kept, taken) = (group.kept.clone(), group.taken.clone());
    let first = group.read(20);
    let finished: Vec<_> = first
        .iter()
        .filter(|r| r.topic == kept && r.offset < 5)
        .map(KafkaRecord::locator)
        .collect();
    group.first.finished(&finished);
    group.first.commit(CommitMode::Sync).unwrap();

    let (forgotten, mut polled, second) = group.rebalance(10);
    assert_eq!(
        forgotten,
        Forgotten::partitions([(kept.as_str(), 0), (taken.as_str(), 0)])
    );
    if polled.len() < 5 {
        polled.extend(group.read(5 - polled.len()));
    }
    assert_eq!(offsets(&polled, &kept), (5..10).collect::<Vec<_>>());
    assert_eq!(offsets(&polled, &taken), Vec::<i64>::new());
    let locators: Vec<_> = polled.iter().map(KafkaRecord::locator).collect();
    group.first.finished(&locators);
    group.first.commit(CommitMode::Sync).unwrap();
    assert_eq!(committed(&group.config, &kept, &group.group), [(0, 10, 10)]);
    let taken_over = second.records();
    assert_eq!(offsets(&taken_over, &taken), (0..10).collect::<Vec<_>>());
}

/// Promise: one output the broker refuses for good (grown past librdkafka's
/// `message.max.bytes` by the transform) goes to the dead-letter topic with
/// the reason, its source and its value cut to fit; the worker does not
/// stop, the records after it flow, and every input is committed.
#[test]
fn an_output_too_large_for_the_broker_is_dead_lettered_and_the_worker_goes_on() {
    let config = broker();
    let topics = topics(1, 1);
    let mut values: Vec<String> = (0..20).map(|i| json!({"i": i}).to_string()).collect();
    values[7] = json!({"do": "grow", "bytes": 1_100_000}).to_string();
    produce_to(&config, &topics.inputs[0], 0, &values);
    let pipeline = definition(&topics, "misbehave", json!({"batch_size": 5}));
    let worker = Worker::start(&pipeline);
    wait_for(&config, &[&topics.output, &topics.dead_letter], 20);
    // And it keeps going: records sent after it flow too.
    let later: Vec<String> = (20..25).map(|i| json!({"i": i}).to_string()).collect();
    produce_to(&config, &topics.inputs[0], 0, &later);
    wait_for(&config, &[&topics.output, &topics.dead_letter], 25);
    let stats = worker.stop();
    assert_eq!(
        (stats.read, stats.produced, stats.dead_lettered),
        (25, 24, 1)
    );
    let out: Vec<i64> = read_all(&config, &topics.output)
        .iter()
        .map(|r| json_of(r)["i"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = (0..25).filter(|i| *i != 7).collect();
    assert_eq!(out, expected);
    let dead = read_all(&config, &topics.dead_letter);
    assert_eq!(dead.len(), 1);
    assert_eq!(header_text(&dead[0], header::ERROR_KIND), "produce");
    assert_eq!(header_text(&dead[0], header::SOURCE_OFFSET), "7");
    assert_eq!(
        header_text(&dead[0], sluice_host::pipeline::deliver::TRUNCATED_HEADER),
        "1100000"
    );
    // Every input was committed, the refused one included.
    let committed = sluice_host::kafka::BoundedReader::open(
        &config,
        &sluice_tests::plan(&topics.inputs[0], &pipeline.group_id(), json!({})),
    )
    .unwrap();
    assert_eq!(
        committed.ranges()[0].start,
        25,
        "the group's committed offset"
    );
}

/// Two workers of one group on `cooperative-sticky`: the first reads
/// `slow` (every fourth record loops, so its steps carry records untried
/// to the next) and `moved`; the second, another pipeline of the same
/// group that reads only `moved`, joins while the first is carrying, and
/// the group takes `moved` from the first and nothing else. The records the
/// first holds from `slow` stay with it and are finished there: each loop
/// dead-lettered once, every other record produced once, everything
/// committed. Forgetting them at the revoke, as an eager one does, loses
/// them: `slow` goes on after them and its commit passes them.
#[test]
fn a_worker_keeps_the_records_it_carries_from_partitions_a_cooperative_rebalance_leaves_it() {
    let config = broker()
        .with("partition.assignment.strategy", "cooperative-sticky")
        .with("session.timeout.ms", "6000");
    let (slow, moved) = (fresh_topic("coop-slow"), fresh_topic("coop-moved"));
    let (output, dead_letter) = (fresh_topic("coop-out"), fresh_topic("coop-dlq"));
    for topic in [&slow, &moved, &output, &dead_letter] {
        ensure_topic(&config, topic, 1).unwrap();
    }
    let looping = |i: usize| i % 4 == 1;
    let values: Vec<String> = (0..240)
        .map(|i| match looping(i) {
            true => json!({"do": "loop", "i": i}),
            false => json!({"i": i}),
        })
        .map(|v| v.to_string())
        .collect();
    produce_to(&config, &slow, 0, &values);
    let plain: Vec<String> = (0..50).map(|i| json!({"m": i}).to_string()).collect();
    produce_to(&config, &moved, 0, &plain);
    let group = fresh_topic("coop-workers");
    let pipeline = |name: &str, inputs: &[&String]| {
        PipelineDefinition::from_value(&json!({
            "name": fresh_topic(name), "group_id": group, "inputs": inputs,
            "outputs": [output], "dead_letter": dead_letter, "transform": "misbehave",
            "batch_size": 100, "limits": {"deadline_ms": 100, "budget_ms": 500},
        }))
        .unwrap()
    };
    let first = pipeline("coop-first", &[&slow, &moved]);
    let second = pipeline("coop-second", &[&moved]);
    let (stats, _) = run_until(&config, &first, || {
        // Once the first worker has begun (something reached the output),
        // with most of its loops still ahead, the second joins.
        wait_for(&config, &[&output], 1);
        run_until(&config, &second, || {
            wait_committed(&config, &slow, &group, 240);
            wait_committed(&config, &moved, &group, 50);
        });
    });
    assert!(stats.read > 0, "{stats:?}");

    let out = read_all(&config, &output);
    let slow_out: Vec<usize> = out
        .iter()
        .filter_map(|r| json_of(r)["i"].as_u64())
        .map(|i| i as usize)
        .collect();
    let good: Vec<usize> = (0..240).filter(|i| !looping(*i)).collect();
    assert_eq!(slow_out, good, "once each, in order");
    let mut moved_out: Vec<u64> = out
        .iter()
        .filter_map(|r| json_of(r)["m"].as_u64())
        .collect();
    moved_out.sort();
    moved_out.dedup();
    assert_eq!(moved_out, (0..50).collect::<Vec<_>>(), "at least once each");
    let mut dead: Vec<i64> = read_all(&config, &dead_letter)
        .iter()
        .map(|r| header_text(r, header::SOURCE_OFFSET).parse().unwrap())
        .collect();
    dead.sort();
    let loops: Vec<i64> = (0..240).filter(|i| looping(*i)).map(|i| i as i64).collect();
    assert_eq!(dead, loops, "each loop dead-lettered once");
    assert_eq!(committed(&config, &slow, &group), [(0, 240, 240)]);
    assert_eq!(committed(&config, &moved, &group), [(0, 50, 50)]);
}

/// 100 looping records among 500 in one batch, a 100 ms deadline and a 1 s
/// budget. Run one by one with the full deadline each, the batch took one
/// step of 10 s, past this test's `max.poll.interval.ms` (8 s): the group
/// put the worker out and the batch was read again, forever with the
/// default settings. Within the budget each step ends after the budget and
/// one deadline, plus the rest of the step: the produce, the commit, and
/// every 5 s the consumer lag (about a second against tansu), so 2 s more
/// here. The records a step leaves untried wait for the next, and in
/// the end each loop is dead-lettered once, every other record produced
/// once and in order, and everything committed.
#[test]
fn looping_records_hold_no_step_past_its_budget_and_each_is_dead_lettered_once() {
    let config = broker()
        .with("max.poll.interval.ms", "8000")
        .with("session.timeout.ms", "6000");
    let topics = topics(1, 1);
    let looping = |i: usize| i % 5 == 2;
    let values: Vec<String> = (0..500)
        .map(|i| match looping(i) {
            true => json!({"do": "loop", "i": i}),
            false => json!({"i": i}),
        })
        .map(|v| v.to_string())
        .collect();
    produce_to(&config, &topics.inputs[0], 0, &values);
    let (deadline, budget) = (Duration::from_millis(100), Duration::from_millis(1000));
    let pipeline = definition(
        &topics,
        "misbehave",
        json!({"batch_size": 500, "limits": {"deadline_ms": 100, "budget_ms": 1000}}),
    );
    let (stats, ends) = run_until(&config, &pipeline, || {
        wait_for(&config, &[&topics.output, &topics.dead_letter], 500)
    });
    let longest = ends
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        longest < budget + deadline + Duration::from_secs(2),
        "the longest step took {longest:?}"
    );
    assert_eq!(
        (stats.read, stats.produced, stats.dead_lettered),
        (500, 400, 100)
    );

    let produced: Vec<usize> = read_all(&config, &topics.output)
        .iter()
        .map(|r| json_of(r)["i"].as_u64().unwrap() as usize)
        .collect();
    let good: Vec<usize> = (0..500).filter(|i| !looping(*i)).collect();
    assert_eq!(produced, good, "every other record once, in order");
    let mut dead: Vec<i64> = read_all(&config, &topics.dead_letter)
        .iter()
        .map(|r| {
            assert_eq!(header_text(r, header::ERROR_KIND), "deadline");
            let reason = header_text(r, header::ERROR_REASON);
            assert!(reason.contains("deadline of 100ms"), "{reason}");
            header_text(r, header::SOURCE_OFFSET).parse().unwrap()
        })
        .collect();
    dead.sort();
    let loops: Vec<i64> = (0..500).filter(|i| looping(*i)).map(|i| i as i64).collect();
    assert_eq!(dead, loops, "each loop dead-lettered once");
    assert_eq!(
        committed(&config, &topics.inputs[0], &pipeline.group_id()),
        [(0, 500, 500)]
    );
}

/// A join pipeline over inputs `a` and `b` with `join` settings added,
/// run by the `Enricher` directly (no broker): what the worker runs.
fn join_enricher(join: Value) -> sluice_host::enrich::Enricher {
    let mut spec = json!({"key": "id", "timeout_ms": 600_000, "on_timeout": "dead_letter"});
    for (k, v) in join.as_object().unwrap() {
        spec[k] = v.clone();
    }
    let definition = PipelineDefinition::from_value(&json!({
        "name": "limits", "inputs": ["a", "b"], "outputs": ["out"],
        "transform": "misbehave", "dead_letter": "dlq", "join": spec,
    }))
    .unwrap();
    sluice_host::enrich::Enricher::new(definition, &transform("misbehave")).unwrap()
}

fn input(topic: &str, offset: i64, value: Value) -> KafkaRecord {
    let mut record = KafkaRecord::from_value(topic, offset, value.to_string().into_bytes());
    record.timestamp = Some(1_000 + offset);
    record
}

/// 100 ids of about 1 KiB wait for input `b` under a budget of 10 KiB:
/// the ids that waited longest are given up as a timeout is (here
/// dead-lettered, the reason naming the budget), and every input record is
/// either finished (so committed) or still waiting: none is lost.
#[test]
fn a_join_over_its_byte_budget_gives_up_the_oldest_ids_and_loses_no_record() {
    let mut enricher = join_enricher(json!({"max_pending_bytes": 10 << 10}));
    let padding = "x".repeat(1_000);
    let mut finished = Vec::new();
    let mut dead_letters = Vec::new();
    for step in 0..5 {
        let records: Vec<KafkaRecord> = (step * 20..step * 20 + 20)
            .map(|i| input("a", i, json!({"id": i, "pad": padding})))
            .collect();
        let done = enricher.process(records, Instant::now());
        finished.extend(done.finished.iter().map(|r| r.offset));
        dead_letters.extend(done.produce);
        assert!(enricher.pending() <= 10, "{} ids wait", enricher.pending());
    }
    let waiting = enricher.pending() as i64;
    assert!(waiting >= 5, "{waiting} ids wait");
    finished.sort();
    assert_eq!(
        finished,
        (0..100 - waiting).collect::<Vec<_>>(),
        "the oldest first"
    );
    assert_eq!(dead_letters.len(), finished.len());
    for record in &dead_letters {
        assert_eq!(record.topic, "dlq");
        let text = |key: &str| {
            record
                .headers
                .iter()
                .find(|h| h.key == key)
                .and_then(|h| String::from_utf8(h.value.clone()?).ok())
                .unwrap_or_default()
        };
        assert_eq!(text(header::ERROR_KIND), "join-timeout");
        let reason = text(header::ERROR_REASON);
        assert!(reason.contains("join.max_pending_bytes"), "{reason}");
    }
    // The ones still waiting join when their partners come.
    let partners: Vec<KafkaRecord> = (100 - waiting..100)
        .map(|i| input("b", i, json!({"id": i})))
        .collect();
    let done = enricher.process(partners, Instant::now());
    assert_eq!(done.stats.joined, waiting as u64);
    assert_eq!(enricher.pending(), 0);
}

/// A record with more fields than `join.max_fields` (10,000 unless set)
/// is dead-lettered at once, the reason naming the limit and the record;
/// one at the limit joins.
#[test]
fn a_record_past_max_fields_is_dead_lettered_naming_the_limit_and_the_record() {
    let mut enricher = join_enricher(json!({}));
    let wide = |fields: usize| {
        let mut object: serde_json::Map<String, Value> =
            (1..fields).map(|i| (format!("f{i}"), json!(i))).collect();
        object.insert("id".into(), json!(1));
        Value::Object(object)
    };
    let step = enricher.process(vec![input("a", 3, wide(10_001))], Instant::now());
    assert_eq!(step.stats.dead_lettered, 1);
    assert_eq!(step.finished.len(), 1);
    let dead = &step.produce[0];
    let text = |key: &str| {
        dead.headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| String::from_utf8(h.value.clone()?).ok())
            .unwrap_or_default()
    };
    assert_eq!(text(header::ERROR_KIND), sluice_host::enrich::LIMIT_KIND);
    let reason = text(header::ERROR_REASON);
    assert!(
        reason.contains("topic a partition 0 offset 3 (id `1`): 10001 fields")
            && reason.contains("join.max_fields (10000)"),
        "{reason}"
    );
    assert_eq!(enricher.pending(), 0);

    let step = enricher.process(
        vec![input("a", 4, wide(10_000)), input("b", 5, json!({"id": 1}))],
        Instant::now(),
    );
    assert_eq!((step.stats.joined, step.stats.dead_lettered), (1, 0));
}
