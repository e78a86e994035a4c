//! The export's CPU path without a broker: records already read from Kafka
//! (1,000,000 expedia bookings, as JSON and as Confluent-framed Avro) to a
//! zstd Parquet file with the metadata columns, exactly as `sluice export`
//! writes one (`export::decode`, `table::kafka_batch`, typed Avro
//! columns, `export::PartitionFile`), beside pyarrow doing the same job
//! (`Table.from_pylist` + `write_table`, zstd, row groups of 64k rows) from
//! the same records. Each variant runs in a process of its own; the two
//! files are read back and must hold the same rows.
//!
//! `cargo bench -p sluice-tests --bench export_encode [-- RECORDS]`
//! (1,000,000; 2,000 under `cargo test --all-targets`).

use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    Array, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use sluice_host::codec::SchemaRegistry;
use sluice_host::export::{ExportOptions, FileNames, PartitionFile, Refusal, decode};
use sluice_host::record::{Header, KafkaRecord};
use sluice_host::table::{
    Cell, Timestamps, kafka_batch, kafka_schema, merged_fields, schema_with, with_value_columns,
};
use sluice_tests::bench::{self, Child, Stopwatch, Table, expedia_avro, run_python, run_variant};

/// What every variant puts in the metadata columns (`export_pyarrow.py`
/// does the same): topic `expedia`, partition 0, offsets from 0, a
/// timestamp 1 ms apart from this one, the offset as the key, one header.
const TOPIC: &str = "expedia";
const FIRST_TIMESTAMP: i64 = 1_764_547_200_000;
/// Records per step, as `sluice export` reads them (`ExportOptions`).
const STEP: usize = 5_000;

fn main() {
    if let Some(child) = Child::from_args() {
        return variant(&child);
    }
    let count = bench::count(1_000_000, 2_000);
    let dir = tempfile::tempdir().expect("temp folder");
    eprintln!("generating {count} bookings as JSON and as Confluent-framed Avro...");
    let json = bench::expedia_values(count, 3);
    let schema = expedia_avro::schema();
    let avro: Vec<Vec<u8>> = json
        .iter()
        .map(|v| {
            let value = serde_json::from_slice(v).expect("generated JSON");
            let mut frame = vec![0u8];
            frame.extend_from_slice(&1u32.to_be_bytes());
            frame.extend(
                apache_avro::to_avro_datum(&schema, expedia_avro::record(&schema, &value))
                    .expect("record matches its schema"),
            );
            frame
        })
        .collect();
    let input = |name: &str, values: &[Vec<u8>]| {
        let path = dir.path().join(name);
        bench::write_frames(&path, values.iter().map(Vec::as_slice));
        path.to_str().expect("UTF-8 temp path").to_owned()
    };
    let average = json.iter().map(Vec::len).sum::<usize>() / count.max(1);
    let json_input = input("json.frames", &json);
    let avro_input = input("avro.frames", &avro);
    drop((json, avro));
    let schema_path = dir.path().join("expedia.avsc");
    std::fs::write(&schema_path, expedia_avro::schema_json()).expect("write schema");
    let out = |name: &str| dir.path().join(name).to_str().expect("UTF-8").to_owned();

    let mut table = Table::on_cpu_time(format!(
        "export encode: {count} bookings ({average} bytes of JSON each) -> zstd Parquet with the metadata columns, one process each"
    ));
    for (format, input) in [("json", &json_input), ("avro", &avro_input)] {
        let sluice_out = out(&format!("sluice-{format}"));
        let sluice = run_variant(
            format,
            &[("input", input.clone()), ("out", sluice_out.clone())],
        );
        let peer = |check: &str, file: &str| {
            let file = out(file);
            let measured = run_python(
                "export_pyarrow.py",
                &[
                    ("input", input.clone()),
                    ("format", format.to_owned()),
                    ("schema", schema_path.to_str().expect("UTF-8").to_owned()),
                    ("check_json", check.to_owned()),
                    ("out", file.clone()),
                ],
            );
            (measured, file)
        };
        let (pyarrow, pyarrow_out) = peer("1", &format!("pyarrow-{format}.parquet"));
        let sluice_file = only_file(Path::new(&sluice_out));
        if pyarrow.is_some() {
            let rows = assert_same_rows(&sluice_file, Path::new(&pyarrow_out), format == "avro");
            eprintln!("{format}: Sluice's and pyarrow's files agree on {rows} rows");
        }
        let pyarrow_name = format!("pyarrow {format}");
        table.row(&pyarrow_name, pyarrow.as_ref(), None);
        if format == "json" {
            // A Python exporter that trusts its input to be JSON does less
            // than Sluice, which refuses (dead-letters) what is not.
            let (unchecked, _) = peer("0", "pyarrow-json-unchecked.parquet");
            table.row("pyarrow json, values not checked", unchecked.as_ref(), None);
        }
        let name = format!("sluice {format}");
        table.row(&name, Some(&sluice), Some(&pyarrow_name));
        table.target_rate(
            &format!("{name} records per CPU-second"),
            table.rate(&name),
            500_000.0,
        );
        table.target_ratio(
            &format!("{name} vs pyarrow"),
            table.ratio(&name, &pyarrow_name),
            3.0,
            false,
        );
    }
    table.print();
}

/// One variant: `json` or `avro`, Sluice's export path over the input.
fn variant(child: &Child) {
    let values = bench::read_frames(&child.path("input"));
    let records: Vec<KafkaRecord> = values
        .into_iter()
        .enumerate()
        .map(|(i, value)| KafkaRecord {
            topic: TOPIC.to_owned(),
            partition: 0,
            offset: i as i64,
            timestamp: Some(FIRST_TIMESTAMP + i as i64),
            key: Some(i.to_string().into_bytes()),
            value: Some(value),
            headers: vec![Header {
                key: "source".into(),
                value: Some(b"bench".to_vec()),
            }],
        })
        .collect();
    let bytes: usize = records
        .iter()
        .map(|r| r.value.as_ref().map_or(0, Vec::len))
        .sum();
    let mut options = ExportOptions::new("bench");
    let mut typed = Vec::new();
    if child.variant == "avro" {
        // The schema is served over HTTP once, as a registry would, and
        // cached from then on: fetched here, before the clock starts.
        let registry = sluice_tests::schema_registry::start_with_subjects(
            vec![(1, expedia_avro::schema_json())],
            vec![(format!("{TOPIC}-value"), vec![1])],
        );
        let client = SchemaRegistry::new(&registry.url).expect("registry client");
        let schemas = client
            .subject_schemas(&format!("{TOPIC}-value"))
            .expect("subject")
            .expect("subject known");
        typed = merged_fields(schemas.iter().map(|s| s.schema()));
        client.schema(1).expect("schema 1");
        options.registry = Some(Arc::new(client));
    }
    let schema = schema_with(&kafka_schema(options.value, Timestamps::Millis), &typed);
    let mut watch = Stopwatch::default();
    let (mut rows, mut bytes_written) = (0u64, 0u64);
    watch.time(|| {
        let mut file = PartitionFile::create(&child.path("out"), TOPIC, 0, 0, 0, schema)
            .expect("staging file");
        // As `export_topic` writes each step's records of a partition.
        for chunk in records.chunks(STEP) {
            let mut kept = Vec::with_capacity(chunk.len());
            let mut cells: Vec<Vec<Cell>> = Vec::new();
            for record in chunk {
                match decode(record, &options, &typed) {
                    Ok((record, row)) => {
                        kept.push(record);
                        cells.extend(row);
                    }
                    Err(Refusal::DeadLetter(reason)) => {
                        file.dead_letter(record, &reason).expect("dead letter")
                    }
                    Err(Refusal::Unavailable(error)) => panic!("the bench's registry: {error}"),
                }
            }
            let batch =
                kafka_batch(&kept, options.value, Timestamps::Millis, |_, o| o).expect("rows");
            let batch = if typed.is_empty() {
                batch
            } else {
                with_value_columns(&batch, &typed, &cells).expect("typed columns")
            };
            let last = chunk.last().map_or(0, |r| r.offset);
            file.write(&batch, last).expect("write rows");
        }
        let written = file.finish(&FileNames::Ranges, 0).expect("close the file");
        assert_eq!(written.dead_lettered, 0, "every generated record is kept");
        rows = written.rows;
        bytes_written = written.bytes;
    });
    eprintln!(
        "sluice {}: {rows} rows in a file of {bytes_written} bytes",
        child.variant
    );
    child.report(records.len() as u64, bytes as u64, rows, &watch);
}

/// The one Parquet file a variant left in its folder.
fn only_file(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("variant's folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one file in {}: {files:?}", dir.display());
    files.remove(0)
}

/// Both files hold the same rows: same count, and at every sampled row the
/// same offset, timestamp, key and value (JSON-equal), and for Avro the
/// same typed columns. Returns the row count.
fn assert_same_rows(ours: &Path, theirs: &Path, typed: bool) -> usize {
    let mut columns = vec![
        "topic",
        "offset",
        "kafka_offset",
        "timestamp",
        "key",
        "value",
    ];
    if typed {
        columns.extend(["id", "srch_ci", "srch_co", "hotel_id"]);
    }
    let (a, b) = (sampled_rows(ours, &columns), sampled_rows(theirs, &columns));
    assert_eq!(a.0, b.0, "row counts");
    for ((row, x), (_, y)) in a.1.iter().zip(&b.1) {
        for ((name, x), y) in columns.iter().zip(x).zip(y) {
            let same = match (x, y) {
                (Some(x), Some(y)) if *name == "value" => bench::same_json(x, y),
                _ => x == y,
            };
            assert!(same, "column {name}, row {row}: {x:?} / {y:?}");
        }
    }
    a.0
}

/// The row count of a Parquet file, and the `columns` of every sampled row
/// as text.
type Sampled = (usize, Vec<(usize, Vec<Option<String>>)>);

fn sampled_rows(path: &Path, columns: &[&str]) -> Sampled {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    let total = reader_rows(path);
    let stride = bench::check_stride(total);
    let mut sampled = Vec::new();
    let mut at = 0;
    for batch in reader {
        let batch = batch.expect("readable rows");
        for row in 0..batch.num_rows() {
            if (at + row).is_multiple_of(stride) {
                let cells = columns.iter().map(|c| text(&batch, c, row)).collect();
                sampled.push((at + row, cells));
            }
        }
        at += batch.num_rows();
    }
    (at, sampled)
}

fn reader_rows(path: &Path) -> usize {
    let file = std::fs::File::open(path).expect("Parquet file");
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file");
    usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0)
}

/// A cell as text, whatever the column's type; `None` for a null.
fn text(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let column = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    if column.is_null(row) {
        return None;
    }
    let any = column.as_any();
    if let Some(s) = any.downcast_ref::<StringArray>() {
        return Some(s.value(row).to_owned());
    }
    if let Some(b) = any.downcast_ref::<BinaryArray>() {
        return Some(String::from_utf8_lossy(b.value(row)).into_owned());
    }
    if let Some(n) = any.downcast_ref::<Int64Array>() {
        return Some(n.value(row).to_string());
    }
    if let Some(n) = any.downcast_ref::<Int32Array>() {
        return Some(n.value(row).to_string());
    }
    if let Some(t) = any.downcast_ref::<TimestampMillisecondArray>() {
        return Some(t.value(row).to_string());
    }
    panic!("column {name} of an unexpected type {}", column.data_type())
}
