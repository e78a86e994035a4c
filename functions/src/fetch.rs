//! Records at given offsets, for people: the core of `sluice fetch` and of
//! `GET /api/fetch`. Reads never wait for records that do not exist yet,
//! and stop at limits a caller cannot raise; the result says why it ended.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_host::codec::{SchemaRegistry, decode_confluent};
use sluice_host::kafka::{BoundedReader, KafkaConfig, KafkaError, ReadPlan, ReaderPool, Start};
use sluice_host::parquet::{ValueColumn, kafka_batch};
use sluice_host::record::{Header, KafkaRecord, Outcome};
use sluice_host::runtime::{GuestError, Limits, Transform};

/// Where to read: partitions and the offset (or time) each starts at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchQuery {
    pub topic: String,
    pub start: Start,
    /// Records per partition, at most.
    pub count: u64,
}

/// Bounds no request can exceed.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    pub max_count: u64,
    pub max_bytes: usize,
    pub max_time: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_count: 10_000,
            max_bytes: 16 << 20,
            max_time: Duration::from_secs(10),
        }
    }
}

/// Why a read ended before every requested record was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitedBy {
    Count,
    Bytes,
    Time,
}

#[derive(Debug)]
pub struct Fetched {
    pub records: Vec<KafkaRecord>,
    /// Set when a limit, not the partition's end, stopped the read.
    pub limited_by: Option<LimitedBy>,
    /// `(partition, end of the readable range)`: the high watermark, or the
    /// start plus the count when that is lower.
    pub ends: Vec<(i32, i64)>,
}

/// The consumer group fetches read as; nothing is ever committed to it.
const FETCH_GROUP: &str = "sluice-fetch";

/// Consumers for [`fetch`], kept connected between fetches.
pub fn reader_pool(config: KafkaConfig) -> ReaderPool {
    ReaderPool::new(config, FETCH_GROUP)
}

pub fn fetch(
    readers: &ReaderPool,
    query: &FetchQuery,
    limits: &FetchLimits,
) -> Result<Fetched, KafkaError> {
    let mut limited_by = None;
    let count = if query.count > limits.max_count {
        limited_by = Some(LimitedBy::Count);
        limits.max_count
    } else {
        query.count
    };
    let plan = ReadPlan {
        topic: query.topic.clone(),
        group_id: readers.group_id().to_owned(),
        start: query.start.clone(),
        max_per_partition: Some(count),
        offset_increment: BTreeMap::new(),
    };
    let started = Instant::now();
    let (mut records, read_limited_by, ends) = readers.read(&plan, |reader| {
        let ends = reader
            .ranges()
            .iter()
            .map(|r| (r.partition, r.end))
            .collect();
        let (records, limited_by) = read_within(reader, limits, started)?;
        Ok((records, limited_by, ends))
    })?;
    let limited_by = read_limited_by.or(limited_by);
    if let Start::Timestamp { millis, .. } = query.start {
        // Brokers answer a time past the last record with "the end", but
        // some (tansu) with the first offset: records older than asked for
        // are not what the caller wants either way.
        records.retain(|r| r.timestamp.is_none_or(|t| t >= millis));
    }
    Ok(Fetched {
        records,
        limited_by,
        ends,
    })
}

/// Reads `reader` to its end or to the first limit reached.
fn read_within(
    reader: &mut BoundedReader,
    limits: &FetchLimits,
    started: Instant,
) -> Result<(Vec<KafkaRecord>, Option<LimitedBy>), KafkaError> {
    let mut records = Vec::new();
    let mut bytes = 0usize;
    while let Some(batch) = reader.next_batch(500)? {
        for record in batch {
            bytes +=
                record.value.as_ref().map_or(0, Vec::len) + record.key.as_ref().map_or(0, Vec::len);
            if bytes > limits.max_bytes {
                return Ok((records, Some(LimitedBy::Bytes)));
            }
            records.push(record);
        }
        if started.elapsed() > limits.max_time {
            return Ok((records, Some(LimitedBy::Time)));
        }
    }
    Ok((records, None))
}

/// Header set on a fetched record whose value could not be decoded; its
/// value is then shown as stored.
pub const DECODE_ERROR_HEADER: &str = "sluice.decode.error";

/// Replaces Confluent-framed Avro values with their JSON text, using the
/// writer's schema from the registry.
pub fn decode_avro(records: &mut [KafkaRecord], registry: &SchemaRegistry) {
    for record in records {
        let Some(bytes) = record.value.as_deref() else {
            continue;
        };
        match decode_confluent(bytes, registry) {
            Ok(value) => record.value = Some(value.to_string().into_bytes()),
            Err(error) => record.headers.push(Header {
                key: DECODE_ERROR_HEADER.to_owned(),
                value: Some(error.to_string().into_bytes()),
            }),
        }
    }
}

/// What a transform would do with each record: the dry run.
pub fn dry_run(
    transform: &std::sync::Arc<Transform>,
    records: &[KafkaRecord],
) -> Result<Vec<Result<Outcome, GuestError>>, sluice_host::runtime::RuntimeError> {
    Ok(transform
        .transformer(Limits::default(), Default::default())?
        .process(records))
}

/// A value as JSON when it is JSON, else as text.
pub fn text_or_json(bytes: Option<&[u8]>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => serde_json::from_slice(b)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned())),
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
        "key": record.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()),
        "value": text_or_json(record.value.as_deref()),
        "headers": headers,
    });
    if let Some(outcome) = outcome {
        line["outcome"] = outcome_json(outcome);
    }
    line
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

pub fn write_json_lines(
    records: &[KafkaRecord],
    outcomes: Option<&[Result<Outcome, GuestError>]>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for (i, record) in records.iter().enumerate() {
        writeln!(
            out,
            "{}",
            record_json(record, outcomes.and_then(|o| o.get(i)))
        )?;
    }
    Ok(())
}

/// RFC 4180: fields with commas, quotes or line breaks are quoted.
pub fn write_csv(records: &[KafkaRecord], out: &mut dyn Write) -> std::io::Result<()> {
    let field = |text: &str| {
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    };
    writeln!(out, "partition,offset,timestamp,key,value")?;
    for r in records {
        let text = |b: Option<&[u8]>| {
            b.map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        writeln!(
            out,
            "{},{},{},{},{}",
            r.partition,
            r.offset,
            r.timestamp.map(|t| t.to_string()).unwrap_or_default(),
            field(&text(r.key.as_deref())),
            field(&text(r.value.as_deref()))
        )?;
    }
    Ok(())
}

pub fn write_parquet<W: Write + Send>(records: &[KafkaRecord], out: W) -> anyhow::Result<()> {
    let batch = kafka_batch(records, ValueColumn::Raw, |_, o| o)?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(out, batch.schema(), None)?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}
