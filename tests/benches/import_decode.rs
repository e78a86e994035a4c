//! The import's CPU path without a broker: files on local disk (JSON
//! lines, Avro and Parquet, as a Spark job writes part files) to the
//! records `sluice import` would produce, read as it reads them (each file
//! through once to check it, its rows kept, then the records made from
//! them, keyed by `id`, with the file and row headers; and once more with
//! no budget to keep rows, when a file is read twice). Beside it a Python reader doing the same
//! job with json, fastavro and pyarrow. Each variant runs in a process of
//! its own and writes the key and value of sampled records; they must
//! agree (values JSON-equal).
//!
//! `cargo bench -p sluice-tests --bench import_decode [-- ROWS]`
//! (1,000,000 rows; 2,000 under `cargo test --all-targets`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_host::import::{CheckedFile, DEFAULT_KEEP_BUDGET, Format, produce_record};
use sluice_tests::bench::{
    self, CheckWriter, Child, Stopwatch, Table, expedia_avro, run_python, run_variant,
};

const TOPIC: &str = "expedia";
/// Rows per produced chunk (`--chunk-rows`' default).
const CHUNK: usize = 1_000;

fn main() {
    if let Some(child) = Child::from_args() {
        return variant(&child);
    }
    let rows = bench::count(1_000_000, 2_000);
    let files = if bench::benchmarking() { 10 } else { 2 };
    let dir = tempfile::tempdir().expect("temp folder");
    eprintln!("writing {rows} bookings as JSON lines, Avro and Parquet in {files} files each...");
    let values: Vec<Value> = bench::expedia_values(rows, 9)
        .iter()
        .map(|v| serde_json::from_slice(v).expect("generated JSON"))
        .collect();
    for (part, chunk) in values.chunks(rows.div_ceil(files)).enumerate() {
        let write = |format: &str, bytes: Vec<u8>| {
            let folder = dir.path().join(format);
            std::fs::create_dir_all(&folder).expect("folder");
            std::fs::write(folder.join(format!("part-{part:05}.{format}")), bytes)
                .expect("write file");
        };
        let mut lines = Vec::new();
        for value in chunk {
            serde_json::to_writer(&mut lines, value).expect("JSON");
            lines.push(b'\n');
        }
        write("jsonl", lines);
        write("avro", expedia_avro::container_file(chunk));
        write("parquet", expedia_avro::parquet_file(chunk));
    }
    drop(values);
    let stride = bench::check_stride(rows);
    let path = |name: &str| dir.path().join(name).to_str().expect("UTF-8").to_owned();

    let mut table = Table::on_cpu_time(format!(
        "import decode: {rows} rows in {files} files -> records to produce, one process each"
    ));
    for format in ["jsonl", "avro", "parquet"] {
        let args = |name: &str| {
            vec![
                ("folder", path(format)),
                ("format", format.to_owned()),
                ("stride", stride.to_string()),
                ("check", path(&format!("{name}-{format}.check"))),
            ]
        };
        let run_sluice = |name: &str, keep_budget: usize| {
            let mut args = args(name);
            args.push(("keep_budget", keep_budget.to_string()));
            run_variant("sluice", &args)
        };
        let sluice = run_sluice("sluice", DEFAULT_KEEP_BUDGET);
        // Past the keep budget a file is read again to produce its rows.
        let twice = run_sluice("twice", 0);
        let python = run_python("import_python.py", &args("python"));
        for name in ["twice", "python"] {
            if name == "python" && python.is_none() {
                continue;
            }
            let lines = bench::assert_agree(
                &format!("{format}: sluice and {name}"),
                Path::new(&path(&format!("sluice-{format}.check"))),
                Path::new(&path(&format!("{name}-{format}.check"))),
                same_record,
            );
            eprintln!("{format}: Sluice and {name} agree on {lines} sampled records");
        }
        let peer = format!("python {format}");
        let name = format!("sluice {format}");
        table.row(&peer, python.as_ref(), None);
        table.row(&name, Some(&sluice), Some(&peer));
        table.row(
            &format!("sluice {format}, past the keep budget (read twice)"),
            Some(&twice),
            Some(&peer),
        );
        table.target_ratio(
            &format!("{name} vs python"),
            table.ratio(&name, &peer),
            5.0,
            false,
        );
    }
    table.print();
}

/// `key \t value`: the same key, JSON-equal values.
fn same_record(a: &str, b: &str) -> bool {
    match (a.split_once('\t'), b.split_once('\t')) {
        (Some((ka, va)), Some((kb, vb))) => ka == kb && bench::same_json(va, vb),
        _ => false,
    }
}

fn variant(child: &Child) {
    let folder = child.path("folder");
    let format: Format = child.arg("format").parse().expect("a format");
    let stride = child.number("stride") as u64;
    let keep_budget = child.number("keep_budget");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("folder")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    // Opened (and read once, into the page cache) before the clock starts:
    // the import reads each file from local disk, a local folder's in
    // place and an Azure file's downloaded copy, and the bench measures
    // what it does with the bytes.
    let files: Vec<(String, std::fs::File)> = paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            std::fs::read(p).expect("read file");
            (name, std::fs::File::open(p).expect("open file"))
        })
        .collect();
    let bytes: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).expect("file size").len())
        .sum();
    let mut check = CheckWriter::create(&child.path("check"));
    let mut watch = Stopwatch::default();
    let mut records = 0u64;
    for (name, file) in files {
        // As `FileImport::run`: every row read to find a bad file before
        // any of it is produced (and kept, within the budget), then the
        // records, a chunk at a time.
        let checked =
            watch.time(|| CheckedFile::check(format, file, keep_budget).expect("readable file"));
        assert_eq!(checked.kept(), keep_budget > 0, "{name}: rows kept");
        let total = checked.rows();
        let mut rows = checked.rows_from(0).expect("readable file");
        let mut row = 0u64;
        loop {
            let chunk: Vec<_> = watch.time(|| {
                rows.by_ref()
                    .take(CHUNK)
                    .map(|value| {
                        let value = value.expect("readable row");
                        row += 1;
                        produce_record(TOPIC, &name, row - 1, value, Some("id"))
                    })
                    .collect()
            });
            if chunk.is_empty() {
                break;
            }
            for record in &chunk {
                if records.is_multiple_of(stride) {
                    check.line(&format!(
                        "{}\t{}",
                        String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()),
                        String::from_utf8_lossy(record.value.as_deref().unwrap_or_default())
                    ));
                }
                records += 1;
            }
        }
        assert_eq!(row, total, "{name}: both passes read every row");
    }
    child.report(records, bytes, records, &watch);
}
