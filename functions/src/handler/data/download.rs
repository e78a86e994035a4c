//! `GET /api/search/download`: the whole result of a search as one file
//! (CSV, JSON lines or Parquet), streamed. The search runs page after page
//! (each page the search's own answer, with its cursor), each page written
//! to the body and dropped before the next is read, so memory holds one
//! page (bounded by the search's matches and bytes per answer) whatever
//! the size of the file. The whole download keeps the search's budget of
//! records looked at and of time; what stopped it, and the cursor to go on
//! with, are the file's last row (CSV), last line (JSON lines) or its
//! `sluice.end` key-value metadata (Parquet).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use sluice_host::fetch::FetchError;
use sluice_host::kafka::ReaderPool;
use sluice_host::lake::{Missing, Source};
use sluice_host::record::KafkaRecord;
use sluice_host::search::{SearchHow, SearchLimits, SearchQuery, Searched, StoppedBy, search};
use tokio::sync::{mpsc, oneshot};

use super::fetch::fetch_error;
use super::search::{SearchParams, avro_of, limits_of, query_of};
use super::{ApiError, DataApi};
use crate::render::{CSV_HEADER, ParquetRecords, csv_field, write_csv_rows, write_json_lines};

/// Where the summary is: the key of the last JSON line and of the
/// Parquet file's metadata, and the key column of the last CSV row.
pub const END_KEY: &str = "sluice.end";

/// Bytes gathered before a chunk goes to the body, and chunks queued at
/// most: a slow reader holds the search back instead of filling memory.
const CHUNK: usize = 64 << 10;
const CHUNKS_QUEUED: usize = 4;
/// Ranges of offsets the export could not give, kept for the summary at
/// most (the rest are counted): the file's end must stay small.
const MAX_MISSING: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    JsonLines,
    Parquet,
}

impl Format {
    fn of(text: Option<&str>) -> Result<Format, ApiError> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("" | "ndjson" | "jsonl") => Ok(Format::JsonLines),
            Some("csv") => Ok(Format::Csv),
            Some("parquet") => Ok(Format::Parquet),
            Some(other) => Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("`format`: `{other}` is not one of csv, ndjson, parquet"),
            )),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::JsonLines => "application/x-ndjson",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

#[utoipa::path(get, path = "/api/search/download", tag = "data",
    summary = "The whole result of a search as one streamed file: CSV, JSON lines or Parquet",
    params(SearchParams),
    responses((status = 200, description = "The matches, streamed page by page within the search's budgets of records looked at and of time (`limit` counts the whole file's matches). How it ended is in `sluice.end`: the last CSV row (empty partition, key `sluice.end`, the summary as its value), the last JSON line ({\"sluice.end\": summary}), or the Parquet file's key-value metadata. The summary: complete, stopped_by (limit, records, time, bytes or error), returned, scanned, cursor (pass it back as `cursor` to go on), next_offsets, missing (offsets below the earliest the export does not hold, with the reason; at most 1,000 ranges, the rest counted in missing_not_listed). JSON lines mark records read from the export with \"source\": \"lake\""),
        (status = 400, description = "A parameter that does not parse, named"),
        (status = 404, description = "Unknown topic or partition"),
        (status = 503, description = "The schema registry cannot be asked: value_format=avro cannot decode now")),
    security(("functions_key" = []), ("bearer" = [])))]
pub(super) async fn download_route(
    State(api): State<Arc<DataApi>>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let format = Format::of(params.format.as_deref())?;
    // A key given in hex or base64 is searched as its bytes; the file
    // shows keys as the fetch's files do (text, or hex when not UTF-8).
    let (query, _key_form) = query_of(&params)?;
    let budget = Budget::new(&query, params.limit, limits_of(&api));
    let how = SearchHow {
        avro: avro_of(&api, &params)?,
        lake: api.lake.clone(),
    };
    let (chunks, body) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_QUEUED);
    let (started, first) = oneshot::channel::<Result<(), ApiError>>();
    let readers = api.readers.clone();
    let topic = query.topic.clone();
    tokio::task::spawn_blocking(move || {
        let download = Download {
            readers: &readers,
            query,
            how,
            budget,
            missing: Vec::new(),
            missing_more: 0,
        };
        download.run(format, BodyWriter::new(chunks), started);
    });
    // The first page decides the status: an unknown topic is a 404, not
    // an empty file.
    first.await.map_err(|_| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the download stopped".into(),
        )
    })??;
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|chunk| (chunk, body))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = header::HeaderValue::from_str(&format!(
        "attachment; filename=\"{topic}.{}\"",
        format.extension()
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// What the whole download may spend: the search's budgets, over every
/// page together.
struct Budget {
    started: Instant,
    /// The server's time, and the request's lower one.
    max_time: Duration,
    asked_time: Duration,
    max_scanned: u64,
    /// Matches in the whole file: the request's `limit`, else no limit.
    max_matches: u64,
    /// What one page may hold (the search's answer limits).
    page: SearchLimits,
    scanned: u64,
    returned: u64,
}

impl Budget {
    fn new(query: &SearchQuery, limit: Option<u64>, page: SearchLimits) -> Budget {
        Budget {
            started: Instant::now(),
            max_time: page.max_time,
            asked_time: query
                .max_time
                .map_or(page.max_time, |t| t.min(page.max_time)),
            max_scanned: query
                .max_scanned
                .map_or(page.max_scanned, |n| n.min(page.max_scanned)),
            max_matches: limit.unwrap_or(u64::MAX),
            page,
            scanned: 0,
            returned: 0,
        }
    }

    /// The next page's query and limits: what is left of the budget.
    fn page(&self, query: &SearchQuery) -> (SearchQuery, SearchLimits) {
        let spent = self.started.elapsed();
        let page = SearchQuery {
            limit: (self.max_matches - self.returned).min(self.page.max_matches),
            max_scanned: Some(self.max_scanned.saturating_sub(self.scanned)),
            max_time: Some(self.asked_time.saturating_sub(spent)),
            ..query.clone()
        };
        let limits = SearchLimits {
            max_time: self.max_time.saturating_sub(spent),
            ..self.page
        };
        (page, limits)
    }

    /// Why the download cannot take another page, if it cannot.
    fn spent(&self) -> Option<StoppedBy> {
        let spent = self.started.elapsed();
        if self.returned >= self.max_matches {
            Some(StoppedBy::Limit)
        } else if self.scanned >= self.max_scanned {
            Some(StoppedBy::Records)
        } else if spent >= self.asked_time {
            Some(StoppedBy::Time)
        } else {
            None
        }
    }
}

/// One download's state: the query, its cursor moved on page by page.
struct Download<'a> {
    readers: &'a ReaderPool,
    query: SearchQuery,
    how: SearchHow,
    budget: Budget,
    /// What the export could not give, over every answer.
    missing: Vec<Missing>,
    missing_more: usize,
}

/// How a download ended, as its summary says it.
enum Ended {
    Complete,
    Stopped(StoppedBy),
    Failed(String),
}

impl Download<'_> {
    fn next_page(&mut self) -> Result<Searched, FetchError> {
        let (query, limits) = self.budget.page(&self.query);
        let searched = search(self.readers, &query, &limits, &self.how)?;
        self.budget.scanned += searched.scanned;
        self.budget.returned += searched.records.len() as u64;
        for missing in &searched.missing {
            if self.missing.len() < MAX_MISSING {
                self.missing.push(missing.clone());
            } else {
                self.missing_more += 1;
            }
        }
        Ok(searched)
    }

    fn run(
        mut self,
        format: Format,
        out: BodyWriter,
        started: oneshot::Sender<Result<(), ApiError>>,
    ) {
        let first = match self.next_page() {
            Ok(page) => page,
            Err(error) => {
                let _ = started.send(Err(fetch_error(error)));
                return;
            }
        };
        let _ = started.send(Ok(()));
        let mut file = match File::start(format, out) {
            Ok(file) => file,
            Err(error) => {
                tracing::info!(error = %format!("{error:#}"), "a download's reader went away");
                return;
            }
        };
        let mut page = Some(first);
        let mut last_cursor = None;
        let mut last_next = Default::default();
        let ended = loop {
            let Some(searched) = page.take() else {
                break Ended::Complete;
            };
            if let Err(error) = file.write(&searched.records, &searched.sources) {
                tracing::info!(error = %format!("{error:#}"), "a download's reader went away");
                return;
            }
            last_next = searched.next_offsets();
            let empty = searched.records.is_empty();
            let stopped_by = searched.stopped_by;
            last_cursor = searched.cursor.clone();
            let Some(cursor) = searched.cursor else {
                break Ended::Complete;
            };
            drop(searched.records);
            match stopped_by {
                // A page's own limits: the next page goes on, unless a
                // record alone is larger than a page may hold.
                Some(StoppedBy::Bytes) if empty => break Ended::Stopped(StoppedBy::Bytes),
                Some(StoppedBy::Limit | StoppedBy::Bytes) => {}
                Some(other) => break Ended::Stopped(other),
                None => break Ended::Stopped(StoppedBy::Time),
            }
            if let Some(spent) = self.budget.spent() {
                break Ended::Stopped(spent);
            }
            self.query.cursor = Some(cursor);
            match self.next_page() {
                Ok(next) => page = Some(next),
                Err(error) => break Ended::Failed(error.to_string()),
            }
        };
        let (complete, stopped_by, error) = match &ended {
            Ended::Complete => (true, Value::Null, Value::Null),
            Ended::Stopped(by) => (false, json!(by), Value::Null),
            Ended::Failed(error) => (false, json!("error"), json!(error)),
        };
        let next: std::collections::BTreeMap<String, i64> = last_next
            .into_iter()
            .map(|(p, o): (i32, i64)| (p.to_string(), o))
            .collect();
        let summary = json!({
            "complete": complete,
            "stopped_by": stopped_by,
            "error": error,
            "returned": self.budget.returned,
            "scanned": self.budget.scanned,
            "cursor": if complete { Value::Null } else { json!(last_cursor.as_ref().map(ToString::to_string)) },
            "next_offsets": next,
            "missing": self.missing,
            "missing_not_listed": self.missing_more,
            "note": if complete {
                "every record of the partitions searched was looked at"
            } else {
                "the download stopped before the end: ask again with the same parameters and this cursor for the rest"
            },
        });
        if let Err(error) = file.end(&summary) {
            tracing::info!(error = %format!("{error:#}"), "a download's reader went away");
        }
    }
}

/// The file being written, in its format.
enum File {
    Csv(BodyWriter),
    JsonLines(BodyWriter),
    /// Boxed: the writer's state is ten times the others'.
    Parquet(Box<ParquetRecords<BodyWriter>>),
}

impl File {
    fn start(format: Format, mut out: BodyWriter) -> anyhow::Result<File> {
        Ok(match format {
            Format::Csv => {
                writeln!(out, "{CSV_HEADER}")?;
                File::Csv(out)
            }
            Format::JsonLines => File::JsonLines(out),
            Format::Parquet => File::Parquet(Box::new(ParquetRecords::new(out)?)),
        })
    }

    /// `records`; in JSON lines, those `sources` says came from the export
    /// are marked so.
    fn write(&mut self, records: &[KafkaRecord], sources: &[Source]) -> anyhow::Result<()> {
        match self {
            File::Csv(out) => write_csv_rows(records, out)?,
            File::JsonLines(out) => write_json_lines(records, None, sources, out)?,
            File::Parquet(file) => file.write(records)?,
        }
        Ok(())
    }

    fn end(self, summary: &Value) -> anyhow::Result<()> {
        match self {
            File::Csv(mut out) => {
                writeln!(out, ",,,{END_KEY},{}", csv_field(&summary.to_string()))?;
                out.flush()?;
            }
            File::JsonLines(mut out) => {
                writeln!(out, "{}", json!({ END_KEY: summary }))?;
                out.flush()?;
            }
            File::Parquet(file) => file.finish(Some((END_KEY, summary.to_string())))?,
        }
        Ok(())
    }
}

/// The response body as a `Write`: bytes gathered into chunks, each sent
/// when full (waiting while the queue is full); an error once the reader
/// has gone.
struct BodyWriter {
    chunks: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl BodyWriter {
    fn new(chunks: mpsc::Sender<Result<Bytes, std::io::Error>>) -> BodyWriter {
        BodyWriter {
            chunks,
            buffer: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.chunks
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the reader left"))
    }
}

impl Write for BodyWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for BodyWriter {
    /// The rest goes out when the file is closed (Parquet's writer drops
    /// its output after the footer).
    fn drop(&mut self) {
        let _ = self.send();
    }
}
