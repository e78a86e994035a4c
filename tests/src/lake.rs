//! A time-partitioned export read back as a lake's users read it: DuckDB
//! over its folders (`tests/python/duckdb_lake.py`), and the files of each
//! time folder counted here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// `2026-12-05T10:00:00Z` plus `minutes`, in ms since the epoch.
pub fn at_minute(minutes: i64) -> i64 {
    1_796_464_800_000 + minutes * 60_000
}

/// What DuckDB reads of the Parquet files under `glob` (and, with
/// `filter`, a filtered count, the files its scan kept and read, and with
/// `repeat` the best time of that count); `None`, with a message, when the
/// tool virtualenv has no DuckDB.
pub fn duckdb(glob: &Path, filter: Option<&str>, repeat: usize) -> Option<Value> {
    let Some(python) = crate::python_tools() else {
        eprintln!("SKIPPED the DuckDB read: no virtualenv (scripts/setup.sh python-tools)");
        return None;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/duckdb_lake.py");
    let mut request = json!({"glob": glob, "repeat": repeat});
    if let Some(filter) = filter {
        request["where"] = json!(filter);
    }
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(request.to_string())
        .output()
        .expect("run DuckDB");
    assert!(
        output.status.success(),
        "DuckDB could not read {request}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("the reader prints JSON"))
}

/// The data files under `root/<prefix>`, by time folder (`dt=…/hour=…`,
/// relative to `root/<prefix>`).
pub fn files_by_folder(root: &Path, prefix: &str) -> BTreeMap<String, Vec<PathBuf>> {
    let base = root.join(prefix);
    let mut folders: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for path in crate::stored::files_under(&base) {
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let folder = path
            .parent()
            .and_then(|p| p.strip_prefix(&base).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        folders.entry(folder).or_default().push(path);
    }
    folders
}

/// The completeness markers under `root/_complete/topic=<topic>`, as the
/// folders they name, with their bytes.
pub fn markers(root: &Path, topic: &str) -> BTreeMap<String, Vec<u8>> {
    let base = root.join(format!("_complete/topic={topic}"));
    crate::stored::files_under(&base)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "_state.json"))
        .map(|p| {
            let name = p
                .strip_prefix(&base)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&p).expect("a marker");
            (name, bytes)
        })
        .collect()
}

/// The key-value metadata of a Parquet file's footer.
pub fn footer(path: &Path) -> BTreeMap<String, String> {
    let file = std::fs::File::open(path).expect("a file");
    let reader =
        parquet::file::serialized_reader::SerializedFileReader::new(file).expect("a Parquet file");
    use parquet::file::reader::FileReader;
    reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
        .collect()
}
