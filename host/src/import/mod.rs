//! Import: files from a folder (local or Azure storage) into a topic, one
//! JSON record per row. JSON lines, Avro object container files and
//! Parquet are read; each file's format comes from its extension unless
//! the caller fixes one.
//!
//! Resuming: after every acknowledged chunk of rows the progress file
//! (`_sluice_import/<topic>.json` in the imported folder, see [`ledger`])
//! records how many rows of the file are in Kafka, and a finished file is
//! marked done. A re-run skips finished files and starts a half-imported
//! file at the first row not recorded, so a crash between chunks neither
//! skips nor repeats a row. The one window left is a crash after a chunk is
//! acknowledged and before the progress file is written: that chunk (at
//! most `chunk_rows` rows) is produced again. Every record carries
//! `sluice.import.file` and `sluice.import.row` headers, so a consumer can
//! drop such repeats.
//!
//! One import of a folder into a topic at a time: the import holds a lease
//! (`_sluice_import/<topic>.lock`, see `lease.rs`) that it renews while it
//! runs, and writes progress only while it holds it. An import that dies,
//! however it dies, is taken over once its lease expires (30 s by default).
//!
//! Memory: a file is read from local disk (a local folder's in place, an
//! Azure file downloaded in chunks to a temporary file first), so what an
//! import holds is the keep budget of checked rows, a chunk of records
//! being produced and the readers' buffers, whatever the files' sizes.
//!
//! Bad files: each file is read through once before anything of it is
//! produced (its rows kept for producing, within a budget: `checked`), so
//! a file that cannot be read (not of its format, truncated, a line that
//! is not JSON) produces nothing; it is reported by name with the position
//! of the problem, and the other files go on. A Kafka, progress-file or
//! lease failure stops the run instead: every later file would fail the
//! same way, and what was acknowledged is already recorded.

mod avro;
mod checked;
mod error;
mod format;
mod jsonl;
mod lease;
mod ledger;
mod parquet_file;
mod rows;
mod source;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use tracing::{info, warn};

pub use checked::{CheckedFile, DEFAULT_KEEP_BUDGET};
pub use error::ImportError;
pub use format::{Format, ReadError, Rows};
pub use lease::{DEFAULT_LEASE, ImportLease, lease_key};
pub use ledger::{FileProgress, PROGRESS_DIR, Progress, progress_key};
pub use source::SourceFile;

use crate::kafka::{KafkaConfig, ProduceRecord, Producer};
use crate::record::Header;
use crate::storage::AzureCredentials;
use ledger::Ledger;
use source::Source;

/// Header naming the file a record was imported from.
pub const FILE_HEADER: &str = "sluice.import.file";
/// Header with the record's row number in its file, from 0.
pub const ROW_HEADER: &str = "sluice.import.row";

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Read every file as this format instead of going by extension.
    pub format: Option<Format>,
    /// A top-level field whose value becomes the record key (text as is,
    /// other values as JSON); rows without it get no key.
    pub key_field: Option<String>,
    /// Rows produced and acknowledged together; the progress file is
    /// written after each chunk.
    pub chunk_rows: usize,
    /// Bytes of a file's checked rows kept for producing them; a file
    /// whose rows need more is read a second time instead.
    pub keep_budget: usize,
    /// How long the import's lease lasts unrenewed: it is renewed every
    /// third of this, and an import that died is taken over this long
    /// after its last renewal.
    pub lease: Duration,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            format: None,
            key_field: None,
            chunk_rows: 1000,
            keep_budget: DEFAULT_KEEP_BUDGET,
            lease: DEFAULT_LEASE,
        }
    }
}

/// Where an import is, after each acknowledged chunk.
#[derive(Debug, Clone, Copy)]
pub struct ImportProgress<'a> {
    pub file: &'a str,
    /// Rows of this file in Kafka, including earlier runs'.
    pub rows_done: u64,
    pub rows_total: u64,
    /// Bytes of this run's files done (a file's share by its rows).
    pub bytes_done: u64,
    pub bytes_total: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Files finished in this run.
    pub imported: Vec<ImportedFile>,
    /// Files a previous run finished.
    pub already_done: Vec<String>,
    /// Files with no known extension (and no format given).
    pub skipped: Vec<String>,
    pub failed: Vec<FailedFile>,
}

impl ImportReport {
    /// Rows produced by this run.
    pub fn rows(&self) -> u64 {
        self.imported.iter().map(|f| f.rows).sum()
    }

    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedFile {
    pub path: String,
    pub format: Format,
    /// Rows produced by this run.
    pub rows: u64,
    /// Rows an earlier, interrupted run had already produced.
    pub resumed_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedFile {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for FailedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Imports every file under `url` not yet recorded as imported into
/// `topic` (which must exist), in path order.
pub fn import(
    config: &KafkaConfig,
    url: &str,
    azure: &AzureCredentials,
    topic: &str,
    options: &ImportOptions,
    mut on_progress: impl FnMut(&ImportProgress),
) -> Result<ImportReport, ImportError> {
    let source = Source::open(url, azure)?;
    let lease = ImportLease::take_on(&source, topic, options.lease)?;
    let mut ledger = Ledger::load(&source, topic)?;
    let mut report = ImportReport::default();
    let mut todo = Vec::new();
    for file in source.list()? {
        let Some(format) = options.format.or_else(|| Format::from_path(&file.path)) else {
            info!(file = %file.path, "skipped: not .jsonl, .ndjson, .json, .avro or .parquet");
            report.skipped.push(file.path);
            continue;
        };
        match ledger.file(&file.path) {
            Some(before)
                if before.size != file.size
                    || before.version.is_some()
                        && file.version.is_some()
                        && before.version != file.version =>
            {
                let reason = format!(
                    "changed since it was imported ({} bytes, version {} then; {} bytes, version {} now); remove its entry from {} to import it again",
                    before.size,
                    before.version.as_deref().unwrap_or("unknown"),
                    file.size,
                    file.version.as_deref().unwrap_or("unknown"),
                    source.describe(&progress_key(topic))
                );
                warn!(file = %file.path, "{reason}");
                report.failed.push(FailedFile {
                    path: file.path,
                    reason,
                });
            }
            Some(before) if before.done => report.already_done.push(file.path),
            _ => todo.push((file, format)),
        }
    }
    if todo.is_empty() && report.already_done.is_empty() && report.failed.is_empty() {
        warn!(url, "no files to import");
    }

    let producer = Producer::new(config).map_err(|source| ImportError::Kafka {
        file: url.to_owned(),
        source: Box::new(source),
    })?;
    let bytes_total = todo.iter().map(|(f, _)| f.size).sum();
    let mut bytes_before = 0;
    for (file, format) in todo {
        let mut importer = FileImport {
            source: &source,
            lease: &lease,
            ledger: &mut ledger,
            producer: &producer,
            topic,
            options,
            file: &file,
        };
        let outcome = importer.run(format, |rows_done, rows_total| {
            let share = file.size as u128 * rows_done as u128 / rows_total.max(1) as u128;
            on_progress(&ImportProgress {
                file: &file.path,
                rows_done,
                rows_total,
                bytes_done: bytes_before + share as u64,
                bytes_total,
            })
        });
        match outcome {
            Ok((rows, resumed_at)) => {
                info!(file = %file.path, %format, rows, resumed_at, topic, "imported");
                report.imported.push(ImportedFile {
                    path: file.path.clone(),
                    format,
                    rows,
                    resumed_at,
                });
            }
            Err(FileError::Unreadable(reason)) => {
                warn!(file = %file.path, %format, "not imported: {reason}");
                report.failed.push(FailedFile {
                    path: file.path.clone(),
                    reason,
                });
            }
            Err(FileError::Fatal(e)) => return Err(e),
        }
        bytes_before += file.size;
    }
    Ok(report)
}

enum FileError {
    /// This file cannot be imported; the others can.
    Unreadable(String),
    /// Nothing more can be imported.
    Fatal(ImportError),
}

impl From<ImportError> for FileError {
    fn from(e: ImportError) -> Self {
        FileError::Fatal(e)
    }
}

struct FileImport<'a> {
    source: &'a Source,
    lease: &'a ImportLease,
    ledger: &'a mut Ledger,
    producer: &'a Producer,
    topic: &'a str,
    options: &'a ImportOptions,
    file: &'a SourceFile,
}

impl FileImport<'_> {
    /// Produces the file's rows not yet recorded; returns the rows produced
    /// and where it started.
    fn run(
        &mut self,
        format: Format,
        mut on_chunk: impl FnMut(u64, u64),
    ) -> Result<(u64, u64), FileError> {
        let path = &self.file.path;
        let file = self
            .source
            .open_file(path)
            .map_err(|e| FileError::Unreadable(format!("reading: {e}")))?;
        let unreadable = |e: ReadError| FileError::Unreadable(format!("{format}: {e}"));
        // Every row is read before any is produced: a corrupt file is found
        // before any of it reaches the topic.
        let checked =
            CheckedFile::check(format, file, self.options.keep_budget).map_err(unreadable)?;
        let total = checked.rows();
        let start = self.ledger.file(path).map_or(0, |p| p.rows);
        if start > total {
            return Err(FileError::Unreadable(format!(
                "has {total} rows but {start} are recorded as imported: it changed since"
            )));
        }
        if !checked.kept() {
            info!(file = %path, rows = total, "rows past the keep budget: reading the file again to produce them");
        }
        let mut rows = checked.rows_from(start).map_err(unreadable)?;
        let mut done = start;
        loop {
            let mut chunk = Vec::with_capacity(self.options.chunk_rows);
            for row in rows.by_ref().take(self.options.chunk_rows.max(1)) {
                chunk.push(self.record(row.map_err(unreadable)?, done + chunk.len() as u64));
            }
            if chunk.is_empty() {
                break;
            }
            // Another import that took the lease over may be producing
            // these very rows.
            self.lease.held()?;
            self.producer
                .send_all(&chunk)
                .map_err(|source| ImportError::Kafka {
                    file: self.source.describe(path),
                    source: Box::new(source),
                })?;
            done += chunk.len() as u64;
            self.save(done, done == total)?;
            on_chunk(done, total);
        }
        if done < total {
            // A local file is read in place: rewritten meanwhile, it may
            // end before the rows the check counted.
            return Err(FileError::Unreadable(format!(
                "changed while it was imported: {total} rows when checked, {done} when read again"
            )));
        }
        // An empty file, or one whose last chunk an earlier run produced.
        if self.ledger.file(path).is_none_or(|p| !p.done) {
            self.save(done, true)?;
            on_chunk(done, total);
        }
        Ok((done - start, start))
    }

    fn save(&mut self, rows: u64, done: bool) -> Result<(), ImportError> {
        let progress = FileProgress {
            size: self.file.size,
            version: self.file.version.clone(),
            rows,
            done,
        };
        self.lease.held()?;
        self.ledger.record(self.source, &self.file.path, progress)
    }

    fn record(&self, json: Bytes, row: u64) -> ProduceRecord {
        produce_record(
            self.topic,
            &self.file.path,
            row,
            json,
            self.options.key_field.as_deref(),
        )
    }
}

/// Row `row` of `file` as the record an import produces to `topic`: the
/// row's JSON text (as [`Format::rows`] gives it), keyed by `key_field`
/// when given (text as is, other values as JSON), with the file and row
/// headers. Public so that the import's CPU path can be measured without a
/// broker (`tests/benches/import_decode.rs`).
pub fn produce_record(
    topic: &str,
    file: &str,
    row: u64,
    json: Bytes,
    key_field: Option<&str>,
) -> ProduceRecord {
    let key = key_field.and_then(|field| crate::record::json_row::key_of(&json, field));
    let header = |key: &str, value: String| Header {
        key: key.to_owned(),
        value: Some(value.into_bytes()),
    };
    ProduceRecord {
        timestamp: None,
        topic: topic.to_owned(),
        partition: None,
        key,
        value: Some(json.to_vec()),
        headers: vec![
            header(FILE_HEADER, file.to_owned()),
            header(ROW_HEADER, row.to_string()),
        ],
    }
}
