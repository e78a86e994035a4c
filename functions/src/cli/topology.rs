//! `sluice pipelines topology`: the graph of pipelines, exports and topics
//! as lines for people, JSON (what `GET /api/topology` answers) or Graphviz.

use std::fmt::Write;

use sluice_host::topology::{Topology, Worker, WorkerKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TopologyFormat {
    Text,
    Json,
    Dot,
}

pub fn render(topology: &Topology, format: TopologyFormat) -> anyhow::Result<String> {
    Ok(match format {
        TopologyFormat::Text => text(topology),
        TopologyFormat::Json => serde_json::to_string_pretty(topology)? + "\n",
        TopologyFormat::Dot => dot(topology),
    })
}

fn what_it_runs(worker: &Worker) -> String {
    let mut parts = Vec::new();
    if let Some(transform) = &worker.transform {
        match &worker.transform_version {
            Some(version) => parts.push(format!("{transform}@{version}")),
            None => parts.push(transform.clone()),
        }
    }
    if let Some(join) = &worker.join {
        parts.push(format!(
            "join on {} within {} ms",
            join.key, join.timeout_ms
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn text(topology: &Topology) -> String {
    let mut out = String::new();
    let mut workers: Vec<&Worker> = topology.workers.iter().collect();
    workers.sort_by_key(|w| (w.layer, w.id.clone()));
    for worker in workers {
        let kind = match worker.kind {
            WorkerKind::Pipeline => "pipeline",
            WorkerKind::Export => "export",
        };
        let name = worker.id.split_once(':').map_or(&*worker.id, |(_, n)| n);
        let to = match (&worker.sink, worker.output_topics.is_empty()) {
            (Some(sink), _) => sink.clone(),
            (None, true) => "nothing".to_owned(),
            (None, false) => worker.output_topics.join(", "),
        };
        let _ = write!(
            out,
            "{kind} {name}{}: {} -> {to}",
            what_it_runs(worker),
            worker.input_topics.join(", ")
        );
        if let Some(dead_letter) = &worker.dead_letter_topic {
            let _ = write!(out, "; failures -> {dead_letter}");
        }
        out.push('\n');
    }
    for warning in &topology.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}

/// A Graphviz string literal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn edge(out: &mut String, from: &str, to: &str, attributes: &str) {
    let _ = writeln!(out, "  {} -> {}{attributes};", quoted(from), quoted(to));
}

fn dot(topology: &Topology) -> String {
    let mut out = String::from("digraph sluice {\n  rankdir=LR;\n");
    for topic in &topology.topics {
        let colour = match topic.role {
            sluice_host::topology::TopicRole::DeadLetter => ", color=red",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  {} [shape=ellipse, label={}{colour}];",
            quoted(&format!("topic:{}", topic.id)),
            quoted(&topic.name)
        );
    }
    for worker in &topology.workers {
        let _ = writeln!(
            out,
            "  {} [shape=box, style=rounded, label={}];",
            quoted(&worker.id),
            quoted(&format!("{}{}", worker.name, what_it_runs(worker)))
        );
        let topic = |name: &str| format!("topic:{name}");
        for input in &worker.input_topics {
            edge(&mut out, &topic(input), &worker.id, "");
        }
        for output in &worker.output_topics {
            edge(&mut out, &worker.id, &topic(output), "");
        }
        if let Some(dead_letter) = &worker.dead_letter_topic {
            edge(
                &mut out,
                &worker.id,
                &topic(dead_letter),
                " [style=dashed, color=red]",
            );
        }
        if let Some(sink) = &worker.sink {
            let sink_id = format!("sink:{}", worker.id);
            let _ = writeln!(
                out,
                "  {} [shape=folder, label={}];",
                quoted(&sink_id),
                quoted(sink)
            );
            edge(&mut out, &worker.id, &sink_id, "");
        }
    }
    out.push_str("}\n");
    out
}
