//! What Sluice counts, named in one place: records through pipelines,
//! consumer lag, guest call times, join members waiting, export runs, HTTP
//! requests, transform loads and hot-reload activations. The library records through the
//! `metrics` facade; the binary installs a Prometheus recorder and serves
//! `/metrics`. Without a recorder every call here costs next to nothing.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// What became of a pipeline step's records, as counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub read: u64,
    pub produced: u64,
    pub dead_lettered: u64,
    pub dropped: u64,
}

/// Records a pipeline step's counts: `sluice_records_total{pipeline,
/// version, outcome}` with outcome `read`, `produced`, `dead_lettered` or
/// `dropped`.
pub fn records(pipeline: &str, version: &str, step: RecordCounts) {
    for (outcome, count) in [
        ("read", step.read),
        ("produced", step.produced),
        ("dead_lettered", step.dead_lettered),
        ("dropped", step.dropped),
    ] {
        if count > 0 {
            counter!("sluice_records_total", "pipeline" => pipeline.to_owned(),
                "version" => version.to_owned(), "outcome" => outcome)
            .increment(count);
        }
    }
}

/// `sluice_consumer_lag{pipeline,topic,partition}`: records in the
/// partition past the group's committed offset.
pub fn consumer_lag(pipeline: &str, topic: &str, partition: i32, lag: i64) {
    gauge!("sluice_consumer_lag", "pipeline" => pipeline.to_owned(),
        "topic" => topic.to_owned(), "partition" => partition.to_string())
    .set(lag.max(0) as f64);
}

/// `sluice_join_waiting{pipeline}`: ids waiting for their other inputs;
/// `sluice_join_waiting_bytes{pipeline}`: what their records hold, against
/// `join.max_pending_bytes`.
pub fn join_waiting(pipeline: &str, waiting: usize, bytes: usize) {
    gauge!("sluice_join_waiting", "pipeline" => pipeline.to_owned()).set(waiting as f64);
    gauge!("sluice_join_waiting_bytes", "pipeline" => pipeline.to_owned()).set(bytes as f64);
}

/// `sluice_guest_batch_seconds{transform,version}`: one guest call.
pub fn guest_batch(transform: &str, version: &str, took: Duration) {
    histogram!("sluice_guest_batch_seconds", "transform" => transform.to_owned(),
        "version" => version.to_owned())
    .record(took.as_secs_f64());
}

/// A topic's export run: `sluice_export_runs_total{topic,status}`, and for a
/// run that succeeded its records, files and bytes (counters), its duration
/// and the time it ended (`sluice_export_last_success_timestamp_seconds`).
pub fn export_run(topic: &str, outcome: Option<(u64, usize, u64, f64)>) {
    let status = if outcome.is_some() { "ok" } else { "failed" };
    counter!("sluice_export_runs_total", "topic" => topic.to_owned(), "status" => status)
        .increment(1);
    let Some((records, files, bytes, seconds)) = outcome else {
        return;
    };
    let topic = topic.to_owned();
    counter!("sluice_export_records_total", "topic" => topic.clone()).increment(records);
    counter!("sluice_export_files_total", "topic" => topic.clone()).increment(files as u64);
    counter!("sluice_export_bytes_total", "topic" => topic.clone()).increment(bytes);
    histogram!("sluice_export_duration_seconds", "topic" => topic.clone()).record(seconds);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge!("sluice_export_last_success_timestamp_seconds", "topic" => topic).set(now);
}

/// A time-partitioned run's compaction: `sluice_export_files_compacted_total`
/// (small files merged and removed), `sluice_export_compacted_files_total`
/// and `sluice_export_compacted_bytes_total` (the files the merges wrote),
/// by topic.
pub fn export_compaction(topic: &str, files_in: usize, files_out: usize, bytes_out: u64) {
    if files_in == 0 {
        return;
    }
    let topic = topic.to_owned();
    counter!("sluice_export_files_compacted_total", "topic" => topic.clone())
        .increment(files_in as u64);
    counter!("sluice_export_compacted_files_total", "topic" => topic.clone())
        .increment(files_out as u64);
    counter!("sluice_export_compacted_bytes_total", "topic" => topic).increment(bytes_out);
}

/// `sluice_export_buckets_completed_total{topic}`: completeness markers
/// stored, and `sluice_export_complete_through_timestamp_seconds{topic}`:
/// every time bucket ending by then is complete.
pub fn export_completeness(topic: &str, marked: usize, through_ms: Option<i64>) {
    let topic = topic.to_owned();
    if marked > 0 {
        counter!("sluice_export_buckets_completed_total", "topic" => topic.clone())
            .increment(marked as u64);
    }
    if let Some(through) = through_ms {
        gauge!("sluice_export_complete_through_timestamp_seconds", "topic" => topic)
            .set(through as f64 / 1000.0);
    }
}

/// `sluice_http_requests_total{route,status}`; `route` is the route's
/// template (`/api/pipelines/{name}`), never the raw path, so the number of
/// series stays bounded whatever callers send.
pub fn http_request(route: &str, status: u16) {
    counter!("sluice_http_requests_total", "route" => route.to_owned(),
        "status" => status.to_string())
    .increment(1);
}

/// `sluice_transform_activations_total{transform}`: a running worker
/// switched to a newly activated version.
pub fn activation(transform: &str) {
    counter!("sluice_transform_activations_total", "transform" => transform.to_owned())
        .increment(1);
}

/// `sluice_transform_loads_total{transform,artifact}` and
/// `sluice_transform_load_seconds{transform,artifact}`: a component made
/// ready to run, with `artifact` saying from where: `disk` (this machine's
/// precompiled artifact), `shared` (one another instance compiled) or
/// `compiled` (compiled now, which takes seconds for a large component).
pub fn transform_load(transform: &str, artifact: &'static str, took: Duration) {
    counter!("sluice_transform_loads_total", "transform" => transform.to_owned(),
        "artifact" => artifact)
    .increment(1);
    histogram!("sluice_transform_load_seconds", "transform" => transform.to_owned(),
        "artifact" => artifact)
    .record(took.as_secs_f64());
}
