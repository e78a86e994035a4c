//! The graph of what reads and writes which topic: enrichment pipelines and
//! scheduled exports as workers, topics as the nodes between them (the ETL
//! workers' visualizer). Each node gets a layer, its distance from the
//! sources, so a page can draw the flow left to right; and what looks wrong
//! (loops, a group shared by unrelated workers) is reported as warnings.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::{ExportFormat, TopicEntry};
use crate::enrich::{PipelineDefinition, TransformRef};
use crate::health::{Heartbeat, Liveness};
use crate::shadow::ShadowReport;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub workers: Vec<Worker>,
    pub topics: Vec<TopicNode>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    Pipeline,
    Export,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Worker {
    /// `pipeline:<name>` or `export:<topic>`: unique across both kinds.
    pub id: String,
    pub name: String,
    pub kind: WorkerKind,
    pub input_topics: Vec<String>,
    pub output_topics: Vec<String>,
    pub dead_letter_topic: Option<String>,
    /// The transformer (pipelines) or aggregator (exports) it runs.
    pub transform: Option<String>,
    /// A pinned version; `None` means the active one.
    pub transform_version: Option<String>,
    pub join: Option<JoinSummary>,
    pub group_id: String,
    /// Where an export writes, for people.
    pub sink: Option<String>,
    pub layer: usize,
    /// Its running (or lately stopped) instances, from their heartbeats
    /// (see [`Topology::with_heartbeats`]): pipelines only.
    pub instances: Vec<Instance>,
    /// The version shadowing the transform it follows, and what the shadow
    /// found so far (see [`Topology::with_shadow`]): pipelines only.
    pub shadow: Option<ShadowSummary>,
}

/// A shadow run as the topology shows it on the pipeline: the counts of
/// its report (the whole report is `GET /api/transforms/{name}/shadow`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShadowSummary {
    pub version: String,
    /// Records both versions ran, and of those, how many came out different.
    pub compared: u64,
    pub differ: u64,
    /// Records the shadow did not run (past its CPU share).
    pub skipped: u64,
}

/// One running worker of a pipeline, as its last heartbeat says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    #[serde(flatten)]
    pub beat: Heartbeat,
    pub liveness: Liveness,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JoinSummary {
    pub key: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicRole {
    /// Nothing here produces it: data comes from outside.
    Source,
    Intermediate,
    /// Nothing here consumes it.
    Sink,
    /// Some worker dead-letters into it.
    DeadLetter,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicNode {
    pub id: String,
    pub name: String,
    pub role: TopicRole,
    pub produced_by: Vec<String>,
    pub consumed_by: Vec<String>,
    pub layer: usize,
    /// The next offset of each partition, by partition, when the broker
    /// was asked and answered (see [`Topology::with_end_offsets`]).
    pub end_offsets: Option<Vec<i64>>,
}

/// The topology of `pipelines` and of the exports in `exports` (a
/// topics.json), whose files go under `storage` when it is known.
pub fn topology(
    pipelines: &[PipelineDefinition],
    exports: &[TopicEntry],
    storage: Option<&str>,
) -> Topology {
    let mut workers: Vec<Worker> = pipelines.iter().map(pipeline_worker).collect();
    workers.extend(exports.iter().map(|e| export_worker(e, storage)));
    let mut topics: BTreeMap<String, TopicNode> = BTreeMap::new();
    for worker in &workers {
        for input in &worker.input_topics {
            node(&mut topics, input).consumed_by.push(worker.id.clone());
        }
        for output in worker.output_topics.iter().chain(&worker.dead_letter_topic) {
            node(&mut topics, output)
                .produced_by
                .push(worker.id.clone());
        }
    }
    let dead_letters: BTreeSet<&str> = workers
        .iter()
        .filter_map(|w| w.dead_letter_topic.as_deref())
        .collect();
    for topic in topics.values_mut() {
        topic.role = if dead_letters.contains(topic.name.as_str()) {
            TopicRole::DeadLetter
        } else if topic.produced_by.is_empty() {
            TopicRole::Source
        } else if topic.consumed_by.is_empty() {
            TopicRole::Sink
        } else {
            TopicRole::Intermediate
        };
    }
    let mut warnings = loops(&workers, &topics);
    warnings.extend(shared_groups(&workers));
    assign_layers(&mut workers, &mut topics);
    Topology {
        workers,
        topics: topics.into_values().collect(),
        warnings,
    }
}

impl Topology {
    /// Each pipeline's instances from `beats` (what [`Registry::heartbeats`]
    /// returns), judged alive or not at `now_ms`. A beat of a pipeline not
    /// in the graph (deleted while its worker runs on) becomes a warning.
    ///
    /// [`Registry::heartbeats`]: crate::registry::Registry::heartbeats
    pub fn with_heartbeats(&mut self, beats: Vec<Heartbeat>, now_ms: i64) {
        for beat in beats {
            let id = format!("pipeline:{}", beat.pipeline);
            let liveness = beat.liveness(now_ms);
            match self.workers.iter_mut().find(|w| w.id == id) {
                Some(worker) => worker.instances.push(Instance { beat, liveness }),
                None if liveness == Liveness::Alive => self.warnings.push(format!(
                    "worker {} runs pipeline `{}`, which is not stored",
                    beat.worker, beat.pipeline
                )),
                None => {}
            }
        }
    }

    /// The shadow run of `transform` (version `shadow`, with the report its
    /// instances gathered so far) on every pipeline following that
    /// transform's active version; a pipeline pinned to a version runs no
    /// shadow.
    pub fn with_shadow(&mut self, transform: &str, shadow: &str, report: Option<&ShadowReport>) {
        let summary = ShadowSummary {
            version: shadow.to_owned(),
            compared: report.map_or(0, |r| r.compared),
            differ: report.map_or(0, |r| r.differ.values().sum()),
            skipped: report.map_or(0, |r| r.skipped),
        };
        for worker in &mut self.workers {
            if worker.kind == WorkerKind::Pipeline
                && worker.transform.as_deref() == Some(transform)
                && worker.transform_version.is_none()
            {
                worker.shadow = Some(summary.clone());
            }
        }
    }

    /// The transforms pipelines follow at their active version: the ones a
    /// shadow run can concern.
    pub fn followed_transforms(&self) -> BTreeSet<String> {
        self.workers
            .iter()
            .filter(|w| w.kind == WorkerKind::Pipeline && w.transform_version.is_none())
            .filter_map(|w| w.transform.clone())
            .collect()
    }

    /// Each topic's end offsets, by partition, from `offsets`.
    pub fn with_end_offsets(&mut self, mut offsets: BTreeMap<String, Vec<i64>>) {
        for topic in &mut self.topics {
            topic.end_offsets = offsets.remove(&topic.name);
        }
    }

    /// The names of every topic in the graph.
    pub fn topic_names(&self) -> Vec<String> {
        self.topics.iter().map(|t| t.name.clone()).collect()
    }
}

fn node<'a>(topics: &'a mut BTreeMap<String, TopicNode>, name: &str) -> &'a mut TopicNode {
    topics.entry(name.to_owned()).or_insert_with(|| TopicNode {
        id: name.to_owned(),
        name: name.to_owned(),
        role: TopicRole::Intermediate,
        produced_by: Vec::new(),
        consumed_by: Vec::new(),
        layer: 0,
        end_offsets: None,
    })
}

fn pipeline_worker(p: &PipelineDefinition) -> Worker {
    let transform_version = match &p.transform {
        TransformRef::Pinned { version, .. } => version.clone(),
        TransformRef::Active(_) => None,
    };
    Worker {
        id: format!("pipeline:{}", p.name),
        name: p.name.clone(),
        kind: WorkerKind::Pipeline,
        input_topics: p.inputs.clone(),
        output_topics: p.outputs.clone(),
        dead_letter_topic: Some(p.dead_letter.clone()),
        transform: Some(p.transform.name().to_owned()),
        transform_version,
        join: p.join.as_ref().map(|j| JoinSummary {
            key: j.key.clone(),
            timeout_ms: j.timeout_ms,
        }),
        group_id: p.group_id(),
        sink: None,
        layer: 0,
        instances: Vec::new(),
        shadow: None,
    }
}

fn export_worker(e: &TopicEntry, storage: Option<&str>) -> Worker {
    let files = match (e.format, e.aggregator.is_some()) {
        // The table's folder is `<root>/<topic>`, as the sink says.
        (ExportFormat::Delta, _) => "a Delta table",
        (ExportFormat::Parquet, true) => "aggregates",
        (ExportFormat::Parquet, false) => "Parquet files",
    };
    Worker {
        id: format!("export:{}", e.topic),
        name: format!("export {}", e.topic),
        kind: WorkerKind::Export,
        input_topics: vec![e.topic.clone()],
        output_topics: Vec::new(),
        dead_letter_topic: None,
        transform: e.aggregator.clone(),
        transform_version: None,
        join: None,
        group_id: e.group_id.clone(),
        sink: Some(match storage {
            Some(root) => format!("{files} under {}/{}", root.trim_end_matches('/'), e.topic),
            None => files.to_owned(),
        }),
        layer: 0,
        instances: Vec::new(),
        shadow: None,
    }
}

/// Workers that (through other workers) feed their own inputs: each record
/// would go round for ever. Reported once per loop, from its first worker.
fn loops(workers: &[Worker], topics: &BTreeMap<String, TopicNode>) -> Vec<String> {
    let by_id: BTreeMap<&str, &Worker> = workers.iter().map(|w| (w.id.as_str(), w)).collect();
    let mut reported: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    let mut warnings = Vec::new();
    for start in workers {
        // Breadth-first over worker -> output topic -> consumer, keeping
        // the path, until the start is reached again.
        let mut queue = std::collections::VecDeque::from([vec![start.id.clone()]]);
        let mut seen = BTreeSet::from([start.id.clone()]);
        while let Some(path) = queue.pop_front() {
            let last = by_id[path[path.len() - 1].as_str()];
            for output in last.output_topics.iter().chain(&last.dead_letter_topic) {
                for next in &topics[output].consumed_by {
                    let mut longer = path.clone();
                    longer.push(output.clone());
                    if *next == start.id {
                        let members: BTreeSet<String> = longer.iter().cloned().collect();
                        if reported.insert(members) {
                            longer.push(start.id.clone());
                            warnings.push(format!(
                                "loop: {} (records would go round for ever)",
                                longer.join(" -> ")
                            ));
                        }
                    } else if seen.insert(next.clone()) {
                        longer.push(next.clone());
                        queue.push_back(longer);
                    }
                }
            }
        }
    }
    warnings
}

/// Workers in one consumer group share its partitions: two that read
/// different topics would each see only part of them.
fn shared_groups(workers: &[Worker]) -> Vec<String> {
    let mut by_group: BTreeMap<&str, Vec<&Worker>> = BTreeMap::new();
    for worker in workers {
        by_group.entry(&worker.group_id).or_default().push(worker);
    }
    by_group
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|(group, members)| {
            let names: Vec<&str> = members.iter().map(|w| w.id.as_str()).collect();
            format!(
                "group {group} is used by {}: they would split its partitions between them",
                names.join(", ")
            )
        })
        .collect()
}

/// Longest distance from a source, topics and workers alternating; edges
/// that close a loop are left out so every node gets a finite layer.
fn assign_layers(workers: &mut [Worker], topics: &mut BTreeMap<String, TopicNode>) {
    // Nodes 0..topics are the topics in name order, then the workers.
    let names: Vec<String> = topics.keys().cloned().collect();
    let index: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let count = names.len() + workers.len();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (w, worker) in workers.iter().enumerate() {
        let me = names.len() + w;
        for input in &worker.input_topics {
            edges[index[input.as_str()]].push(me);
        }
        for output in worker.output_topics.iter().chain(&worker.dead_letter_topic) {
            edges[me].push(index[output.as_str()]);
        }
    }
    drop_loop_edges(&mut edges);
    let layers = longest_paths(&edges);
    for (name, layer) in names.iter().zip(&layers) {
        topics.get_mut(name).expect("known topic").layer = *layer;
    }
    for (worker, layer) in workers.iter_mut().zip(&layers[names.len()..]) {
        worker.layer = *layer;
    }
}

/// Removes the edges a depth-first walk finds going back to a node on its
/// current path, sources first, so what is left has no cycle.
fn drop_loop_edges(edges: &mut [Vec<usize>]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let count = edges.len();
    let mut has_incoming = vec![false; count];
    for targets in edges.iter() {
        for &t in targets {
            has_incoming[t] = true;
        }
    }
    let mut roots: Vec<usize> = (0..count).filter(|&n| !has_incoming[n]).collect();
    roots.extend((0..count).filter(|&n| has_incoming[n]));
    let mut mark = vec![Mark::New; count];
    for root in roots {
        if mark[root] != Mark::New {
            continue;
        }
        // (node, next edge to look at), iteratively: graphs can be deep.
        let mut stack = vec![(root, 0usize)];
        mark[root] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if *next == edges[node].len() {
                mark[node] = Mark::Done;
                stack.pop();
                continue;
            }
            let target = edges[node][*next];
            match mark[target] {
                Mark::OnPath => {
                    edges[node].remove(*next);
                }
                Mark::New => {
                    *next += 1;
                    mark[target] = Mark::OnPath;
                    stack.push((target, 0));
                }
                Mark::Done => *next += 1,
            }
        }
    }
}

/// Each node's longest distance from a node without incoming edges, in an
/// acyclic graph (Kahn's order).
fn longest_paths(edges: &[Vec<usize>]) -> Vec<usize> {
    let mut incoming = vec![0usize; edges.len()];
    for targets in edges {
        for &t in targets {
            incoming[t] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..edges.len()).filter(|&n| incoming[n] == 0).collect();
    let mut layer = vec![0usize; edges.len()];
    while let Some(node) = ready.pop() {
        for &t in &edges[node] {
            layer[t] = layer[t].max(layer[node] + 1);
            incoming[t] -= 1;
            if incoming[t] == 0 {
                ready.push(t);
            }
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline(name: &str, inputs: &[&str], outputs: &[&str], dlq: &str) -> PipelineDefinition {
        serde_json::from_value(json!({
            "name": name, "inputs": inputs, "outputs": outputs,
            "dead_letter": dlq, "transform": "t",
        }))
        .unwrap()
    }

    fn export(topic: &str) -> TopicEntry {
        serde_json::from_value(json!({"topic": topic, "group_id": format!("{topic}-export")}))
            .unwrap()
    }

    fn layers(t: &Topology) -> BTreeMap<String, usize> {
        t.workers
            .iter()
            .map(|w| (w.id.clone(), w.layer))
            .chain(t.topics.iter().map(|n| (n.id.clone(), n.layer)))
            .collect()
    }

    #[test]
    fn a_shadow_shows_on_the_pipelines_following_its_transform_only() {
        let mut pinned = pipeline("pinned", &["a"], &["c"], "d2");
        pinned.transform =
            serde_json::from_value(json!({"name": "t", "version": "0123456789ab"})).unwrap();
        let mut other = pipeline("other", &["a"], &["e"], "d3");
        other.transform = serde_json::from_value(json!("u")).unwrap();
        let mut t = topology(
            &[pipeline("follows", &["a"], &["b"], "d1"), pinned, other],
            &[export("b")],
            None,
        );
        assert_eq!(
            t.followed_transforms(),
            BTreeSet::from(["t".to_owned(), "u".to_owned()])
        );
        let report: ShadowReport = serde_json::from_value(json!({
            "transform": "t", "active": "a", "shadow": "b", "instances": ["w1"],
            "compared": 100, "same": 90, "differ": {"records": 7, "shadow_fails": 3},
            "skipped": 40, "skipped_batches": 2, "shadowed_batches": 5,
            "active_ms": 10, "shadow_ms": 5, "samples": [], "updated_ms": 1,
        }))
        .unwrap();
        t.with_shadow("t", "b", Some(&report));
        let shadows: BTreeMap<&str, Option<&ShadowSummary>> = t
            .workers
            .iter()
            .map(|w| (w.id.as_str(), w.shadow.as_ref()))
            .collect();
        let expected = ShadowSummary {
            version: "b".into(),
            compared: 100,
            differ: 10,
            skipped: 40,
        };
        assert_eq!(shadows["pipeline:follows"], Some(&expected));
        assert_eq!(shadows["pipeline:pinned"], None, "pinned: no shadow");
        assert_eq!(shadows["pipeline:other"], None, "another transform");
        assert_eq!(shadows["export:b"], None);
    }

    #[test]
    fn a_chain_is_laid_out_from_its_sources_with_roles() {
        let mut joined = pipeline("p1", &["a", "b"], &["c"], "d1");
        joined.join = serde_json::from_value(json!({"key": "id", "timeout_ms": 500})).unwrap();
        let t = topology(
            &[joined, pipeline("p2", &["c"], &["e"], "d2")],
            &[export("e"), export("a")],
            Some("abfss://lake@acct.dfs.core.windows.net/raw/"),
        );
        assert_eq!(t.warnings, Vec::<String>::new());
        let expected: BTreeMap<String, usize> = [
            ("a", 0),
            ("b", 0),
            ("pipeline:p1", 1),
            ("export:a", 1),
            ("c", 2),
            ("d1", 2),
            ("pipeline:p2", 3),
            ("e", 4),
            ("d2", 4),
            ("export:e", 5),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(layers(&t), expected);
        let role = |id: &str| t.topics.iter().find(|n| n.id == id).unwrap().role;
        assert_eq!(role("a"), TopicRole::Source);
        assert_eq!(role("c"), TopicRole::Intermediate);
        assert_eq!(role("e"), TopicRole::Intermediate);
        assert_eq!(role("d1"), TopicRole::DeadLetter);
        let c = t.topics.iter().find(|n| n.id == "c").unwrap();
        assert_eq!(
            (c.produced_by.clone(), c.consumed_by.clone()),
            (
                vec!["pipeline:p1".to_owned()],
                vec!["pipeline:p2".to_owned()]
            )
        );
        let p1 = &t.workers[0];
        assert_eq!(
            p1.join,
            Some(JoinSummary {
                key: "id".into(),
                timeout_ms: 500
            })
        );
        assert_eq!(p1.group_id, "sluice-p1");
        let export_e = t.workers.iter().find(|w| w.id == "export:e").unwrap();
        assert_eq!(
            export_e.sink.as_deref(),
            Some("Parquet files under abfss://lake@acct.dfs.core.windows.net/raw/e")
        );
        let mut delta = export("d");
        delta.format = crate::config::ExportFormat::Delta;
        let t = topology(&[], &[delta], Some("file:///lake"));
        assert_eq!(
            t.workers[0].sink.as_deref(),
            Some("a Delta table under file:///lake/d")
        );
    }

    #[test]
    fn an_output_without_consumers_is_a_sink() {
        let t = topology(&[pipeline("p", &["in"], &["out"], "dlq")], &[], None);
        let out = t.topics.iter().find(|n| n.id == "out").unwrap();
        assert_eq!(out.role, TopicRole::Sink);
    }

    #[test]
    fn a_loop_is_reported_once_and_still_laid_out() {
        let t = topology(
            &[
                pipeline("p", &["s", "x"], &["y"], "dlq"),
                pipeline("q", &["y"], &["x"], "dlq"),
            ],
            &[],
            None,
        );
        assert_eq!(
            t.warnings,
            [
                "loop: pipeline:p -> y -> pipeline:q -> x -> pipeline:p (records would go round for ever)"
            ]
        );
        let l = layers(&t);
        assert_eq!(
            (l["s"], l["pipeline:p"], l["y"], l["pipeline:q"], l["x"]),
            (0, 1, 2, 3, 4)
        );
    }

    #[test]
    fn dead_lettering_into_an_own_input_is_a_loop() {
        let t = topology(&[pipeline("p", &["in"], &["out"], "in")], &[], None);
        assert_eq!(
            t.warnings,
            ["loop: pipeline:p -> in -> pipeline:p (records would go round for ever)"]
        );
        assert!(t.workers[0].layer <= 2, "{:?}", layers(&t));
    }

    #[test]
    fn a_group_shared_by_two_workers_is_reported() {
        let mut a = pipeline("a", &["x"], &["y"], "dlq");
        let mut b = pipeline("b", &["z"], &["w"], "dlq");
        a.group_id = Some("shared".into());
        b.group_id = Some("shared".into());
        let t = topology(&[a, b], &[], None);
        assert_eq!(
            t.warnings,
            [
                "group shared is used by pipeline:a, pipeline:b: they would split its partitions between them"
            ]
        );
    }
}
