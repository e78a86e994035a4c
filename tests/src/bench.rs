//! What the benches in `tests/benches/` share: their size (full under
//! `cargo bench`, a smoke size under `cargo test --all-targets`), one child
//! process per variant, the Python peers, the input they all read, the
//! agreement checks and the tables they print.
//!
//! Each variant, Sluice's or a peer's, runs in a process of its own (the
//! bench binary re-executed with `--variant NAME`, or a Python script), so
//! the peak RSS printed beside it is that variant's alone: the process's
//! high-water mark (`VmHWM`, `ru_maxrss` in Python), input and all. Every
//! process reads the same input file the parent wrote once, and only its
//! hot loop is timed, in wall-clock and CPU seconds.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Whether `cargo bench` runs us (it passes `--bench`); `cargo test
/// --all-targets` does not, and then each bench is a quick agreement check.
pub fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The number of records: the first numeric argument, else `full` under
/// `cargo bench` and `smoke` otherwise.
pub fn count(full: usize, smoke: usize) -> usize {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benchmarking() { full } else { smoke })
}

/// Every how many records a variant writes a line for the agreement check:
/// all of them in a smoke run, about 10,000 in all otherwise.
pub fn check_stride(records: usize) -> usize {
    if benchmarking() {
        (records / 10_000).max(1)
    } else {
        1
    }
}

/// What one variant did in its hot loop.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measured {
    /// Input records handled.
    pub records: u64,
    /// Input bytes handled (values, or file bytes for imports).
    pub bytes: u64,
    /// Records produced or rows written.
    pub outputs: u64,
    pub seconds: f64,
    pub cpu_seconds: f64,
    /// The process's peak resident set, in KiB.
    pub peak_rss_kb: u64,
    /// Its resident set when the hot loop first started (the input loaded),
    /// in KiB: the peak less this is what the loop itself held.
    #[serde(default)]
    pub input_rss_kb: u64,
    /// Figures of the variant's own, by name (the staging disk an export
    /// held, say).
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, f64>,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }

    /// Records per CPU-second: the rate on one core, whatever else the
    /// machine was running at the time.
    pub fn cpu_rate(&self) -> f64 {
        self.records as f64 / self.cpu_seconds.max(1e-9)
    }
}

/// The line a variant's process ends its output with.
const RESULT: &str = "bench-result ";

/// The arguments a variant's process was started with, when it is one.
pub struct Child {
    pub variant: String,
    args: HashMap<String, String>,
}

impl Child {
    /// `Some` when this process is a variant (`--variant NAME key=value...`).
    pub fn from_args() -> Option<Child> {
        let mut args = std::env::args().skip(1);
        if args.next().as_deref() != Some("--variant") {
            return None;
        }
        let variant = args.next().expect("--variant NAME");
        let args = args
            .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        Some(Child { variant, args })
    }

    pub fn arg(&self, key: &str) -> &str {
        self.args
            .get(key)
            .unwrap_or_else(|| panic!("variant {} started without {key}=", self.variant))
    }

    pub fn path(&self, key: &str) -> PathBuf {
        PathBuf::from(self.arg(key))
    }

    pub fn number(&self, key: &str) -> usize {
        self.arg(key)
            .parse()
            .unwrap_or_else(|e| panic!("{key}={}: {e}", self.arg(key)))
    }

    /// Prints the variant's figures for the parent; the peak RSS is read
    /// now, at the end.
    pub fn report(&self, records: u64, bytes: u64, outputs: u64, watch: &Stopwatch) {
        self.report_with(records, bytes, outputs, watch, Default::default());
    }

    /// [`Self::report`] with figures of the variant's own.
    pub fn report_with(
        &self,
        records: u64,
        bytes: u64,
        outputs: u64,
        watch: &Stopwatch,
        extra: std::collections::BTreeMap<String, f64>,
    ) {
        let measured = Measured {
            records,
            bytes,
            outputs,
            seconds: watch.wall.as_secs_f64(),
            cpu_seconds: watch.cpu,
            peak_rss_kb: peak_rss_kb(),
            input_rss_kb: watch.input_rss_kb,
            extra,
        };
        let json = serde_json::to_string(&measured).expect("figures as JSON");
        println!("{RESULT}{json}");
    }
}

/// Wall-clock and CPU time over the parts of a run that count: what is
/// outside [`Stopwatch::time`] (loading input, writing check lines) is not.
#[derive(Debug, Default)]
pub struct Stopwatch {
    pub wall: Duration,
    pub cpu: f64,
    /// The resident set when the first timed part started, in KiB.
    pub input_rss_kb: u64,
}

impl Stopwatch {
    pub fn time<T>(&mut self, run: impl FnOnce() -> T) -> T {
        if self.input_rss_kb == 0 {
            self.input_rss_kb = status_kb("VmRSS:");
        }
        let (cpu, started) = (cpu_seconds(), Instant::now());
        let out = run();
        self.wall += started.elapsed();
        self.cpu += cpu_seconds() - cpu;
        out
    }
}

/// User plus system CPU time of this process (all threads) so far, to the
/// nanosecond (`/proc/self/stat` counts in 10 ms ticks).
pub fn cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill in.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// This process's peak resident set so far, in KiB (`VmHWM`).
pub fn peak_rss_kb() -> u64 {
    status_kb("VmHWM:")
}

/// A `/proc/self/status` figure in KiB.
fn status_kb(field: &str) -> u64 {
    status_field_kb(
        &std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
        field,
    )
}

/// A figure in KiB of a `/proc/<pid>/status` text; 0 when it is not there.
fn status_field_kb(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs variant `variant` of this bench in a process of its own and returns
/// its figures. Its progress goes to our stderr.
pub fn run_variant(variant: &str, args: &[(&str, String)]) -> Measured {
    let exe = std::env::current_exe().expect("bench binary path");
    let mut command = Command::new(exe);
    command.arg("--variant").arg(variant);
    for (key, value) in args {
        command.arg(format!("{key}={value}"));
    }
    run_for_result(variant, command)
}

/// What a child process used.
#[derive(Debug, Clone, Copy)]
pub struct ProcessUsage {
    pub success: bool,
    pub seconds: f64,
    /// User plus system CPU time of that process (all its threads).
    pub cpu_seconds: f64,
    /// Its peak resident set (`VmHWM`), in KiB.
    pub peak_rss_kb: u64,
}

/// Runs `command` (a program that is not this bench, such as the `sluice`
/// binary) to its end and returns what it used: its own peak RSS, read
/// from `/proc/<pid>/status` every few milliseconds while it runs (a high-
/// water mark, so only growth in its last moments could be missed), and
/// its CPU time from `wait4`. Not `ru_maxrss`: Linux carries the spawning
/// process's high-water mark over into the child's at `exec`, so a child
/// of a bench that held its input would seem to hold it too.
pub fn run_measured(mut command: Command) -> ProcessUsage {
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which gives its CPU time too"
    )]
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let started = Instant::now();
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    let status_path = format!("/proc/{pid}/status");
    let mut peak_rss_kb = 0;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // Read before the wait: until wait4 reaps it, `pid` is this child.
        let hwm = std::fs::read_to_string(&status_path).unwrap_or_default();
        peak_rss_kb = peak_rss_kb.max(status_field_kb(&hwm, "VmHWM:"));
        // SAFETY: `pid` is our child, not yet reaped; `status` and `usage`
        // are valid for writing.
        let waited = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if waited == pid {
            break;
        }
        assert_eq!(waited, 0, "wait4 for {command:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    ProcessUsage {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        peak_rss_kb,
    }
}

/// The virtualenv `scripts/setup.sh python-tools` makes for the peers.
pub fn python() -> Option<PathBuf> {
    crate::python_tools()
}

/// Runs the Python peer `script` (in `tests/benches/python/`) with
/// `key=value` arguments; `None`, with a message saying so, when the
/// virtualenv is not there (a plain `cargo test` on a fresh machine).
pub fn run_python(script: &str, args: &[(&str, String)]) -> Option<Measured> {
    let Some(python) = python() else {
        eprintln!(
            "skipping the Python peer {script}: no virtualenv with pyarrow, fastavro and \
             confluent-kafka (scripts/setup.sh python-tools makes it; scripts/test.sh does)"
        );
        return None;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/python")
        .join(script);
    let mut command = Command::new(python);
    // No `__pycache__` left in the source tree.
    command.env("PYTHONDONTWRITEBYTECODE", "1").arg(path);
    for (key, value) in args {
        command.arg(format!("{key}={value}"));
    }
    Some(run_for_result(script, command))
}

fn run_for_result(name: &str, mut command: Command) -> Measured {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{name}: cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{name} failed ({}); its output:\n{stdout}",
        output.status
    );
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(RESULT))
        .unwrap_or_else(|| panic!("{name} printed no figures; its output:\n{stdout}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: figures {line}: {e}"))
}

/// Writes `values` as the input every variant reads: each a little-endian
/// u32 length and the bytes (`common.py` reads the same framing).
pub fn write_frames<'a>(path: &Path, values: impl IntoIterator<Item = &'a [u8]>) {
    let mut out = BufWriter::new(File::create(path).expect("create input file"));
    for value in values {
        let len = u32::try_from(value.len()).expect("a value under 4 GiB");
        out.write_all(&len.to_le_bytes()).expect("write input");
        out.write_all(value).expect("write input");
    }
    out.flush().expect("write input");
}

/// The values of an input file, read a value at a time so that loading
/// does not raise the peak RSS above the values themselves.
pub fn read_frames(path: &Path) -> Vec<Vec<u8>> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut input = BufReader::new(file);
    let mut values = Vec::new();
    let mut len = [0u8; 4];
    while input.read_exact(&mut len).is_ok() {
        let mut value = vec![0u8; u32::from_le_bytes(len) as usize];
        input.read_exact(&mut value).expect("a whole value");
        values.push(value);
    }
    values
}

/// `count` generated expedia bookings as JSON (about 300 bytes each).
pub fn expedia_values(count: usize, seed: u64) -> Vec<Vec<u8>> {
    use sluice_host::generate::{ExpediaGenerator, StayMix};
    ExpediaGenerator::new(seed, StayMix::default())
        .take(count)
        .map(|v| v.to_string().into_bytes())
        .collect()
}

/// The lines a variant writes for the agreement check.
pub struct CheckWriter(BufWriter<File>);

impl CheckWriter {
    pub fn create(path: &Path) -> CheckWriter {
        CheckWriter(BufWriter::new(
            File::create(path).expect("create check file"),
        ))
    }

    pub fn line(&mut self, line: &str) {
        writeln!(self.0, "{line}").expect("write check file");
    }
}

impl Drop for CheckWriter {
    fn drop(&mut self) {
        let _ = self.0.flush();
    }
}

/// Panics at the first line where `ours` and `theirs` disagree (by `same`),
/// or when one has more lines; returns the number of lines compared.
pub fn assert_agree(
    what: &str,
    ours: &Path,
    theirs: &Path,
    same: impl Fn(&str, &str) -> bool,
) -> usize {
    let lines = |p: &Path| {
        BufReader::new(File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .lines()
            .map(|l| l.expect("check file line"))
    };
    let (mut a, mut b) = (lines(ours), lines(theirs));
    let mut n = 0;
    loop {
        match (a.next(), b.next()) {
            (None, None) => return n,
            (Some(x), Some(y)) => assert!(
                same(&x, &y),
                "{what}: check line {} differs:\n  {}: {x}\n  {}: {y}",
                n + 1,
                ours.display(),
                theirs.display()
            ),
            (x, y) => panic!(
                "{what}: {} has {} lines than {}: {x:?} / {y:?}",
                ours.display(),
                if x.is_some() { "more" } else { "fewer" },
                theirs.display()
            ),
        }
        n += 1;
    }
}

/// Whether two lines of JSON hold the same value.
pub fn same_json(a: &str, b: &str) -> bool {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    a == b || parse(a).is_some_and(|x| Some(x) == parse(b))
}

/// One bench's results: a row per variant, each with its ratio to a named
/// peer, then whether each target is met.
pub struct Table {
    title: String,
    rows: Vec<(String, Option<Measured>, String)>,
    targets: Vec<String>,
    /// Lines printed under the table.
    notes: Vec<String>,
    /// Ratios and targets on CPU time rather than wall-clock time.
    cpu_basis: bool,
}

impl Table {
    /// Ratios and targets on wall-clock time: for runs that wait on the
    /// broker, where the time is what a user sees.
    pub fn new(title: impl Into<String>) -> Table {
        Table {
            title: title.into(),
            rows: Vec::new(),
            targets: Vec::new(),
            notes: Vec::new(),
            cpu_basis: false,
        }
    }

    /// Ratios and targets on CPU time (records per CPU-second): for the
    /// single-threaded CPU paths on a shared machine, where the wall clock
    /// also counts the time other processes had the core.
    pub fn on_cpu_time(title: impl Into<String>) -> Table {
        Table {
            cpu_basis: true,
            ..Table::new(title)
        }
    }

    fn basis(&self, m: &Measured) -> f64 {
        if self.cpu_basis {
            m.cpu_rate()
        } else {
            m.rate()
        }
    }

    /// A row; `peer` names the variant it is compared with (rates divided),
    /// if any. A missing measurement (a skipped Python peer) is shown so.
    pub fn row(&mut self, variant: &str, measured: Option<&Measured>, peer: Option<&str>) {
        let ratio = match (measured, peer.and_then(|p| self.find(p).map(|m| (p, m)))) {
            (Some(m), Some((name, base))) => {
                format!("{:.2}x {name}", self.basis(m) / self.basis(base))
            }
            (_, None) if peer.is_none() => String::new(),
            _ => format!("- {}", peer.unwrap_or_default()),
        };
        self.rows
            .push((variant.to_owned(), measured.cloned(), ratio));
    }

    /// A row whose ratio is time over the peer's (how many times slower).
    pub fn row_time_vs(&mut self, variant: &str, measured: &Measured, peer: &str) {
        let ratio = self.find(peer).map_or(String::new(), |base| {
            format!(
                "{:.2}x {peer} time",
                self.basis(base) / self.basis(measured)
            )
        });
        self.rows
            .push((variant.to_owned(), Some(measured.clone()), ratio));
    }

    fn find(&self, variant: &str) -> Option<&Measured> {
        self.rows
            .iter()
            .find(|(v, _, _)| v == variant)
            .and_then(|(_, m, _)| m.as_ref())
    }

    /// The rate of `variant` over that of `peer`, when both ran.
    pub fn ratio(&self, variant: &str, peer: &str) -> Option<f64> {
        Some(self.basis(self.find(variant)?) / self.basis(self.find(peer)?))
    }

    /// Records per second (or per CPU-second) of `variant`, when it ran.
    pub fn rate(&self, variant: &str) -> Option<f64> {
        self.find(variant).map(|m| self.basis(m))
    }

    /// A target: `measured` (records/s) at least `goal`; `None` when its
    /// variant did not run.
    pub fn target_rate(&mut self, what: &str, measured: Option<f64>, goal: f64) {
        let met = measured.map(|m| m >= goal);
        self.target(what, ">=", measured.map(thousands), thousands(goal), met);
    }

    /// A target: the ratio `measured` at least (or, `at_most`, at most) `goal`.
    pub fn target_ratio(&mut self, what: &str, measured: Option<f64>, goal: f64, at_most: bool) {
        let met = measured.map(|m| if at_most { m <= goal } else { m >= goal });
        let sign = if at_most { "<=" } else { ">=" };
        let ratio = |r: f64| format!("{r:.2}x");
        self.target(what, sign, measured.map(ratio), ratio(goal), met);
    }

    /// A target: `measured` seconds at most `goal`; `None` when it was not
    /// measured.
    pub fn target_seconds(&mut self, what: &str, measured: Option<f64>, goal: f64) {
        let met = measured.map(|m| m <= goal);
        let seconds = |s: f64| format!("{s:.1} s");
        self.target(what, "<=", measured.map(seconds), seconds(goal), met);
    }

    /// A line printed under the table.
    pub fn note(&mut self, line: String) {
        self.notes.push(line);
    }

    fn target(
        &mut self,
        what: &str,
        sign: &str,
        got: Option<String>,
        goal: String,
        met: Option<bool>,
    ) {
        let verdict = match (got, met) {
            (Some(got), Some(true)) => format!("{got}: met"),
            (Some(got), _) => format!("{got}: NOT met"),
            (None, _) => "not measured (a variant was skipped)".to_owned(),
        };
        self.targets
            .push(format!("target: {what} {sign} {goal}: {verdict}"));
    }

    pub fn print(&self) {
        println!("\n{}\n", self.title);
        println!(
            "{:<46} {:>9} {:>8} {:>10} {:>10} {:>7} {:>9} {:>8} {:>5}  ratio",
            "variant",
            "records",
            "seconds",
            "records/s",
            "rec/CPU-s",
            "MB/s",
            "peak RSS",
            "of loop",
            "cores"
        );
        for (variant, measured, ratio) in &self.rows {
            match measured {
                Some(m) => println!(
                    "{variant:<46} {:>9} {:>8.3} {:>10.0} {:>10.0} {:>7.1} {:>6} MB {:>5} MB {:>5.2}  {ratio}",
                    m.records,
                    m.seconds,
                    m.rate(),
                    m.cpu_rate(),
                    m.bytes as f64 / 1e6 / m.seconds.max(1e-9),
                    m.peak_rss_kb / 1024,
                    m.peak_rss_kb.saturating_sub(m.input_rss_kb) / 1024,
                    m.cpu_seconds / m.seconds.max(1e-9),
                ),
                None => println!(
                    "{variant:<46} {:>9}  (skipped: the log above says why)",
                    "-"
                ),
            }
        }
        println!(
            "\nratios and targets on {}; peak RSS: the process's high-water mark, \
             input included; of loop: the peak less the RSS when the timed loop began",
            if self.cpu_basis {
                "CPU time (records per CPU-second, one core)"
            } else {
                "wall-clock time"
            }
        );
        if !self.notes.is_empty() {
            println!();
            for note in &self.notes {
                println!("{note}");
            }
        }
        if !self.targets.is_empty() {
            println!();
            for target in &self.targets {
                println!("{target}");
            }
        }
    }
}

/// A rate with thousands separators.
fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The expedia data set's Avro schema, as Spark writes it: `id` and the
/// counts as longs, `date_time` text, the distance a double, the two dates
/// optional text (bad dates included).
pub mod expedia_avro {
    use std::sync::Arc;

    use apache_avro::types::{Record, Value as AvroValue};
    use apache_avro::{Codec, Schema, Writer};
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    use serde_json::Value;

    const TEXT: [&str; 1] = ["date_time"];
    const DOUBLE: [&str; 1] = ["orig_destination_distance"];
    const NULLABLE_TEXT: [&str; 2] = ["srch_ci", "srch_co"];
    pub const FIELDS: [&str; 20] = [
        "id",
        "date_time",
        "site_name",
        "posa_container",
        "user_location_country",
        "user_location_region",
        "user_location_city",
        "orig_destination_distance",
        "user_id",
        "is_mobile",
        "is_package",
        "channel",
        "srch_ci",
        "srch_co",
        "srch_adults_cnt",
        "srch_children_cnt",
        "srch_rm_cnt",
        "srch_destination_id",
        "srch_destination_type_id",
        "hotel_id",
    ];

    /// The schema as JSON text (what a registry serves).
    pub fn schema_json() -> String {
        let fields: Vec<String> = FIELDS
            .iter()
            .map(|f| {
                let kind = if TEXT.contains(f) {
                    r#""string""#
                } else if DOUBLE.contains(f) {
                    r#""double""#
                } else if NULLABLE_TEXT.contains(f) {
                    r#"["null", "string"]"#
                } else {
                    r#""long""#
                };
                format!(r#"{{"name": "{f}", "type": {kind}}}"#)
            })
            .collect();
        format!(
            r#"{{"type": "record", "name": "expedia", "fields": [{}]}}"#,
            fields.join(", ")
        )
    }

    pub fn schema() -> Schema {
        Schema::parse_str(&schema_json()).expect("schema")
    }

    /// A generated booking as an Avro record of [`schema`].
    pub fn record(schema: &Schema, value: &Value) -> AvroValue {
        let mut record = Record::new(schema).expect("record");
        for f in FIELDS {
            let field = &value[f];
            let avro = if TEXT.contains(&f) {
                AvroValue::String(field.as_str().unwrap_or_default().to_owned())
            } else if DOUBLE.contains(&f) {
                AvroValue::Double(field.as_f64().unwrap_or_default())
            } else if NULLABLE_TEXT.contains(&f) {
                match field.as_str() {
                    Some(text) => AvroValue::Union(1, Box::new(AvroValue::String(text.to_owned()))),
                    None => AvroValue::Union(0, Box::new(AvroValue::Null)),
                }
            } else {
                AvroValue::Long(field.as_i64().unwrap_or_default())
            };
            record.put(f, avro);
        }
        record.into()
    }

    /// An Avro object container file, snappy-compressed as Spark writes it.
    pub fn container_file(values: &[Value]) -> Vec<u8> {
        let schema = schema();
        let mut writer = Writer::with_codec(&schema, Vec::new(), Codec::Snappy);
        for value in values {
            writer.append(record(&schema, value)).expect("append");
        }
        writer.into_inner().expect("Avro file")
    }

    /// A snappy-compressed Parquet file (Spark's default) of the same columns.
    pub fn parquet_file(values: &[Value]) -> Vec<u8> {
        let columns: Vec<(&str, ArrayRef)> = FIELDS
            .iter()
            .map(|&f| {
                let column = values.iter().map(|v| &v[f]);
                let array: ArrayRef = if TEXT.contains(&f) || NULLABLE_TEXT.contains(&f) {
                    Arc::new(StringArray::from_iter(column.map(Value::as_str)))
                } else if DOUBLE.contains(&f) {
                    Arc::new(Float64Array::from_iter(column.map(Value::as_f64)))
                } else {
                    Arc::new(Int64Array::from_iter(column.map(Value::as_i64)))
                };
                (f, array)
            })
            .collect();
        let batch = RecordBatch::try_from_iter(columns).expect("batch");
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut bytes = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        bytes
    }
}
