//! Fetched records rendered for people and tools: JSON (one object per
//! record, with a dry run's outcome beside it), CSV and Parquet. Shared by
//! `sluice fetch` and `GET /api/fetch`; the fetch itself is
//! `sluice_host::fetch`.

use std::io::Write;

use serde_json::{Value, json};
use sluice_host::lake::Source;
use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::GuestError;
use sluice_host::search::KeyForm;
use sluice_host::table::{Timestamps, ValueColumn, kafka_batch, kafka_schema};

/// A value as JSON when it is JSON, else as text, else (bytes that are
/// not UTF-8) in hex: never with bytes replaced. The fetch says which in
/// the record's `sluice.decode.error` header.
pub fn text_or_json(bytes: Option<&[u8]>) -> Value {
    match bytes.map(|b| (b, std::str::from_utf8(b))) {
        None => Value::Null,
        Some((_, Ok(text))) => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        }
        Some((b, Err(_))) => Value::String(hex(b)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text as it is, or hex when it is not UTF-8 (see [`text_or_json`]).
fn text_or_hex(bytes: Option<&[u8]>) -> String {
    match bytes.map(|b| (b, std::str::from_utf8(b))) {
        None => String::new(),
        Some((_, Ok(text))) => text.to_owned(),
        Some((b, Err(_))) => hex(b),
    }
}

/// One record as a JSON object, with its dry-run outcome when there is one.
pub fn record_json(record: &KafkaRecord, outcome: Option<&Result<Outcome, GuestError>>) -> Value {
    let headers: serde_json::Map<String, Value> = record
        .headers
        .iter()
        .map(|h| (h.key.clone(), text_or_json(h.value.as_deref())))
        .collect();
    let mut line = json!({
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": record.key.as_deref().map(|k| text_or_hex(Some(k))),
        "value": text_or_json(record.value.as_deref()),
        "headers": headers,
    });
    if let Some(outcome) = outcome {
        line["outcome"] = outcome_json(outcome);
    }
    line
}

/// Marks a record read from the export (below its partition's earliest
/// offset) with `"source": "lake"`; Kafka's records carry no mark.
pub fn mark_source(line: &mut Value, source: Option<&Source>) {
    if source == Some(&Source::Lake) {
        line["source"] = json!(Source::Lake);
    }
}

/// A record's key also written as a search asked for it (`key_hex`,
/// `key_base64`), beside `key`: nothing for a text key or a null one.
pub fn show_key_as(line: &mut Value, key: Option<&[u8]>, form: KeyForm) {
    if let (KeyForm::Hex | KeyForm::Base64, Some(key)) = (form, key) {
        line[format!("key_{}", form.name())] = json!(form.show(key));
    }
}

pub fn outcome_json(outcome: &Result<Outcome, GuestError>) -> Value {
    match outcome {
        Ok(Outcome::Emit(records)) => json!({"emit": records
            .iter()
            .map(|r| json!({"topic": r.topic, "value": text_or_json(r.value.as_deref())}))
            .collect::<Vec<_>>()}),
        Ok(Outcome::Drop) => json!({"drop": true}),
        Ok(Outcome::Fail(reason)) => json!({"fail": reason}),
        Err(error) => json!({"error": error.to_string(), "kind": error.failure.kind()}),
    }
}

/// One JSON line per record; `sources` says which came from the lake
/// (empty: all from Kafka).
pub fn write_json_lines(
    records: &[KafkaRecord],
    outcomes: Option<&[Result<Outcome, GuestError>]>,
    sources: &[Source],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for (i, record) in records.iter().enumerate() {
        let mut line = record_json(record, outcomes.and_then(|o| o.get(i)));
        mark_source(&mut line, sources.get(i));
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// CSV's header line, which [`write_csv_rows`] follows.
pub const CSV_HEADER: &str = "partition,offset,timestamp,key,value";

/// RFC 4180: fields with commas, quotes or line breaks are quoted.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The header line and a row per record.
pub fn write_csv(records: &[KafkaRecord], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    write_csv_rows(records, out)
}

/// A row per record, without the header: a streamed download writes its
/// pages one after another under one header.
pub fn write_csv_rows(records: &[KafkaRecord], out: &mut dyn Write) -> std::io::Result<()> {
    for r in records {
        let text = text_or_hex;
        writeln!(
            out,
            "{},{},{},{},{}",
            r.partition,
            r.offset,
            r.timestamp.map(|t| t.to_string()).unwrap_or_default(),
            csv_field(&text(r.key.as_deref())),
            csv_field(&text(r.value.as_deref()))
        )?;
    }
    Ok(())
}

pub fn write_parquet<W: Write + Send>(records: &[KafkaRecord], out: W) -> anyhow::Result<()> {
    let mut writer = ParquetRecords::new(out)?;
    writer.write(records)?;
    writer.finish(None)
}

/// Records per Arrow batch handed to the Parquet writer.
const ARROW_BATCH: usize = 1024;

/// Records written to one Parquet file a batch at a time: each batch is
/// its own row group, flushed to `out` before the next is taken, so a
/// streamed download holds one page in memory, never the file.
pub struct ParquetRecords<W: Write + Send> {
    writer: parquet::arrow::ArrowWriter<W>,
}

impl<W: Write + Send> ParquetRecords<W> {
    pub fn new(out: W) -> anyhow::Result<Self> {
        let schema = kafka_schema(ValueColumn::Raw, Timestamps::Millis);
        Ok(ParquetRecords {
            writer: parquet::arrow::ArrowWriter::try_new(out, schema, None)?,
        })
    }

    /// `records` as one row group (none when empty), converted to Arrow
    /// [`ARROW_BATCH`] records at a time, so the copy beside the records and
    /// the row group being encoded is small.
    pub fn write(&mut self, records: &[KafkaRecord]) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        for chunk in records.chunks(ARROW_BATCH) {
            let batch = kafka_batch(chunk, ValueColumn::Raw, Timestamps::Millis, |_, o| o)?;
            self.writer.write(&batch)?;
        }
        self.writer.flush()?;
        Ok(())
    }

    /// Closes the file, with `note` (a key and its text) in its key-value
    /// metadata: the footer is written last, so it can say how the file ended.
    pub fn finish(mut self, note: Option<(&str, String)>) -> anyhow::Result<()> {
        if let Some((key, value)) = note {
            self.writer
                .append_key_value_metadata(parquet::file::metadata::KeyValue::new(
                    key.to_owned(),
                    value,
                ));
        }
        self.writer.close()?;
        Ok(())
    }
}
