//! What the integration tests share: where the compiled guests are, a
//! process-wide runtime, the broker's address and fresh topic names.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_host::kafka::KafkaConfig;
use sluice_host::runtime::{Runtime, RuntimeConfig, Transform};

pub mod app;
pub mod arbitrary;
pub mod bench;
pub mod exports;
pub mod http;
pub mod identity;
pub mod lake;
pub mod stored;

/// The folder of guest components: `$SLUICE_GUESTS_DIR`, else
/// `<target>/wasm32-wasip2/guest` next to this test binary's target folder.
pub fn guests_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_GUESTS_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // <target>/debug/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binary inside a cargo target folder");
    target.join("wasm32-wasip2").join("guest")
}

/// The bytes of a guest component built by `scripts/build-guests.sh`.
pub fn guest(name: &str) -> Vec<u8> {
    let path = guests_dir().join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "guest {name} not found at {} ({e}): run scripts/build-guests.sh first",
            path.display()
        )
    })
}

/// One runtime per test process, as in production, with its artifact
/// cache in the target folder: the test binaries of one run then compile
/// each component once between them (a Python component takes tens of
/// seconds in a debug build) instead of once each. Artifacts are named by
/// the component's hash and the engine's, so a changed component or
/// wasmtime never loads a stale one.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(artifacts_dir()),
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
}

/// `<target>/test-artifacts`, next to this test binary's target folder.
fn artifacts_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|t| t.join("test-artifacts")))
        .unwrap_or_else(|| std::env::temp_dir().join("sluice-test-artifacts"))
}

/// What the host logs at INFO and above, from the first call of this
/// process on: every test that reads it calls this before anything it
/// reads is logged, so the subscriber is the process's own (a subscriber
/// set for one thread only misses lines while other threads register the
/// same log call sites).
pub fn host_log() -> &'static HostLog {
    static LOG: OnceLock<HostLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = HostLog::default();
        let sink = captured.clone();
        tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .init();
        captured
    })
}

/// The host's log lines, as [`host_log`] captures them.
#[derive(Clone, Default)]
pub struct HostLog(Arc<Mutex<Vec<u8>>>);

impl HostLog {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for HostLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A guest loaded into the shared runtime, compiled once per process.
pub fn transform(name: &str) -> Arc<Transform> {
    type Loaded = Mutex<HashMap<String, Arc<Transform>>>;
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    let mut loaded = LOADED.get_or_init(Default::default).lock().expect("lock");
    loaded
        .entry(name.to_owned())
        .or_insert_with(|| runtime().load(name, &guest(name)).expect("load guest"))
        .clone()
}

/// The broker `scripts/services.sh up` started (or `$SLUICE_KAFKA_BROKERS`).
pub fn broker() -> KafkaConfig {
    KafkaConfig::from_env()
}

/// A topic name no earlier run used: the broker keeps topics between runs.
pub fn fresh_topic(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The expedia stay categories computed a second, independent way: counting the
/// days one by one with the calendar rules, to check the guests against.
pub mod independent {
    use serde_json::Value;

    fn leap(y: i64) -> bool {
        (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
    }

    fn month_len(y: i64, m: i64) -> i64 {
        [
            31,
            if leap(y) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ][(m - 1) as usize]
    }

    /// (year, month, day) of a `YYYY-MM-DD` string, checked.
    fn ymd(v: &Value) -> Option<(i64, i64, i64)> {
        let s = v.as_str()?;
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
            return None;
        }
        let n: Vec<i64> = parts
            .iter()
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        if parts.iter().any(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        ((1..=12).contains(&n[1]) && n[2] >= 1 && n[2] <= month_len(n[0], n[1]))
            .then_some((n[0], n[1], n[2]))
    }

    fn ordinal(y: i64, m: i64, d: i64) -> i64 {
        let years: i64 = (1900..y).map(|yy| if leap(yy) { 366 } else { 365 }).sum();
        let months: i64 = (1..m).map(|mm| month_len(y, mm)).sum();
        years + months + d
    }

    pub fn category(record: &Value) -> &'static str {
        let days = match (ymd(&record["srch_ci"]), ymd(&record["srch_co"])) {
            (Some((y1, m1, d1)), Some((y2, m2, d2))) => ordinal(y2, m2, d2) - ordinal(y1, m1, d1),
            _ => return "Erroneous data",
        };
        match days {
            d if d <= 0 => "Erroneous data",
            1..=4 => "Short stay",
            5..=10 => "Standard stay",
            11..=14 => "Standard extended stay",
            _ => "Long stay",
        }
    }
}

/// The Azurite blob endpoint `scripts/services.sh up` started, and the one
/// thing `object_store` cannot do there: create a container.
pub mod azurite {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, Mac};
    use sluice_host::storage::AzureCredentials;

    /// Azurite's fixed, publicly documented development account.
    pub const ACCOUNT: &str = "devstoreaccount1";
    pub const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn port() -> u16 {
        std::env::var("SLUICE_AZURITE_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(10000)
    }

    pub fn credentials() -> AzureCredentials {
        AzureCredentials {
            account: Some(ACCOUNT.to_owned()),
            key: Some(KEY.to_owned()),
            endpoint: Some(format!("http://127.0.0.1:{}/{ACCOUNT}", port())),
            ..AzureCredentials::default()
        }
    }

    /// Creates a container with a Shared Key signed request, as the Blob
    /// API documents it; returns the HTTP answer.
    pub fn create_container(name: &str) -> crate::http::Response {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        );
        let key = STANDARD.decode(KEY).expect("key is base64");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(string_to_sign.as_bytes());
        let authorization = format!(
            "SharedKey {ACCOUNT}:{}",
            STANDARD.encode(mac.finalize().into_bytes())
        );
        crate::http::request(
            port(),
            "PUT",
            &format!("/{ACCOUNT}/{name}?restype=container"),
            &[
                ("x-ms-date", &date),
                ("x-ms-version", version),
                ("Authorization", &authorization),
            ],
            &[],
        )
        .expect("Azurite is running")
    }
}

/// Produces `values` (text or bytes) to one partition of `topic`,
/// acknowledged on return.
pub fn produce_to<V: AsRef<[u8]>>(config: &KafkaConfig, topic: &str, partition: i32, values: &[V]) {
    produce_stamped(config, topic, partition, values, |_| None);
}

/// As [`produce_to`], each record with the event time `timestamp(i)` gives
/// its `i`-th value (ms since the Unix epoch; `None`: the time it is sent).
pub fn produce_stamped<V: AsRef<[u8]>>(
    config: &KafkaConfig,
    topic: &str,
    partition: i32,
    values: &[V],
    timestamp: impl Fn(usize) -> Option<i64>,
) {
    let records: Vec<sluice_host::kafka::ProduceRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| sluice_host::kafka::ProduceRecord {
            timestamp: timestamp(i),
            topic: topic.to_owned(),
            partition: Some(partition),
            key: None,
            value: Some(v.as_ref().to_vec()),
            headers: Vec::new(),
        })
        .collect();
    sluice_host::kafka::Producer::new(config)
        .expect("producer")
        .send_all(&records)
        .expect("records acknowledged");
}

/// The read plan of a `topics.json` entry for `topic` and `group`, with
/// the fields in `extra` added.
pub fn plan(topic: &str, group: &str, extra: serde_json::Value) -> sluice_host::kafka::ReadPlan {
    let mut value = serde_json::json!({"topic": topic, "group_id": group});
    if let (Some(entry), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        entry.extend(extra.clone());
    }
    let entry: sluice_host::config::TopicEntry =
        serde_json::from_value(value).expect("a valid entry");
    entry.read_plan()
}

/// A Schema Registry for tests, answering `GET /schemas/ids/{id}` exactly as
/// Confluent's does (no such server can be installed here), and counting
/// the requests so that caching can be checked.
pub mod schema_registry {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct TestRegistry {
        pub url: String,
        requests: Arc<AtomicUsize>,
        /// Requests answered before the registry goes down (503 to every
        /// later one); `usize::MAX` while it is up.
        down_after: Arc<AtomicUsize>,
    }

    impl TestRegistry {
        pub fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }

        /// Answers `answered` more requests, then 503 to every one after,
        /// as a registry that goes down mid-run does.
        pub fn go_down_after(&self, answered: usize) {
            self.down_after
                .store(self.requests() + answered, Ordering::SeqCst);
        }

        /// Answers every request again.
        pub fn come_back(&self) {
            self.down_after.store(usize::MAX, Ordering::SeqCst);
        }
    }

    /// Serves `schemas` (id, Avro schema JSON) until the process ends.
    pub fn start(schemas: Vec<(u32, String)>) -> TestRegistry {
        start_with_subjects(schemas, Vec::new())
    }

    /// Also serves `subjects`: each a name and the schema ids of its
    /// versions 1, 2, ... (`/subjects/{s}/versions[/{v}]`).
    pub fn start_with_subjects(
        schemas: Vec<(u32, String)>,
        subjects: Vec<(String, Vec<u32>)>,
    ) -> TestRegistry {
        serve(schemas, subjects, None)
    }

    /// Serves `schemas` only to requests whose `Authorization` header is
    /// `authorization` (401 to the others), as Confluent Cloud's does.
    pub fn start_requiring(schemas: Vec<(u32, String)>, authorization: &str) -> TestRegistry {
        serve(schemas, Vec::new(), Some(authorization.to_owned()))
    }

    fn serve(
        schemas: Vec<(u32, String)>,
        subjects: Vec<(String, Vec<u32>)>,
        authorization: Option<String>,
    ) -> TestRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let down_after = Arc::new(AtomicUsize::new(usize::MAX));
        let down = down_after.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // GET requests here have no body; only Authorization counts.
                let mut line = String::new();
                let mut presented = None;
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    if let Some((name, value)) = line.trim_end().split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        presented = Some(value.trim().to_owned());
                    }
                    line.clear();
                }
                if authorization.is_some() && presented != authorization {
                    let body = r#"{"error_code":401,"message":"Unauthorized"}"#;
                    let response = format!(
                        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = (&stream).write_all(response.as_bytes());
                    continue;
                }
                let number = counter.fetch_add(1, Ordering::SeqCst);
                if number >= down.load(Ordering::SeqCst) {
                    let body = r#"{"error_code":50003,"message":"unavailable"}"#;
                    let response = format!(
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = (&stream).write_all(response.as_bytes());
                    continue;
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or_default();
                let schema = |id: u32| {
                    schemas
                        .iter()
                        .find(|(i, _)| *i == id)
                        .map(|(_, s)| s.clone())
                };
                let body = answer(path, &schema, &subjects);
                let (status, body) = match body {
                    Some(body) => ("200 OK", body.to_string()),
                    None => (
                        "404 Not Found",
                        serde_json::json!({"error_code": 40403, "message": "Schema not found"})
                            .to_string(),
                    ),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = (&stream).write_all(response.as_bytes());
            }
        });
        TestRegistry {
            url,
            requests,
            down_after,
        }
    }

    fn answer(
        path: &str,
        schema: &dyn Fn(u32) -> Option<String>,
        subjects: &[(String, Vec<u32>)],
    ) -> Option<serde_json::Value> {
        if let Some(id) = path.strip_prefix("/schemas/ids/") {
            return schema(id.parse().ok()?).map(|s| serde_json::json!({"schema": s}));
        }
        let rest = path.strip_prefix("/subjects/")?;
        let (name, versions) = rest.split_once("/versions")?;
        let ids = &subjects.iter().find(|(n, _)| n == name)?.1;
        match versions.strip_prefix('/') {
            None => Some(serde_json::json!((1..=ids.len()).collect::<Vec<_>>())),
            Some(version) => {
                let version: usize = version.parse().ok()?;
                let id = *ids.get(version.checked_sub(1)?)?;
                Some(
                    serde_json::json!({"subject": name, "version": version, "id": id, "schema": schema(id)?}),
                )
            }
        }
    }

    /// `value` encoded with `schema` in the Confluent wire format.
    pub fn confluent_avro(
        id: u32,
        schema: &apache_avro::Schema,
        value: apache_avro::types::Value,
    ) -> Vec<u8> {
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend(apache_avro::to_avro_datum(schema, value).expect("value matches its schema"));
        bytes
    }
}

/// A small Parquet file's single row group.
pub fn read_parquet(path: &std::path::Path) -> arrow_array::RecordBatch {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    let mut batches: Vec<arrow_array::RecordBatch> =
        reader.collect::<Result<_, _>>().expect("readable rows");
    assert_eq!(batches.len(), 1, "small test files have one row group");
    batches.remove(0)
}

/// Every record of `topic`, all partitions, from the earliest offset to the
/// end at the time of the call.
pub fn read_all(config: &KafkaConfig, topic: &str) -> Vec<sluice_host::record::KafkaRecord> {
    let mut reader =
        sluice_host::kafka::BoundedReader::from_earliest(config, topic).expect("open topic");
    let mut all = Vec::new();
    while let Some(batch) = reader.next_batch(500).expect("read topic") {
        all.extend(batch);
    }
    all
}

/// The `id` field of each record's JSON value, in order.
pub fn ids(records: &[sluice_host::record::KafkaRecord]) -> Vec<u64> {
    records
        .iter()
        .map(|r| {
            let value: serde_json::Value =
                serde_json::from_slice(r.value.as_deref().expect("a value")).expect("JSON");
            value["id"].as_u64().expect("an id")
        })
        .collect()
}

/// The value of header `key` as text; panics when the record lacks it.
pub fn header_text<'a>(record: &'a sluice_host::record::KafkaRecord, key: &str) -> &'a str {
    record
        .headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| std::str::from_utf8(h.value.as_deref()?).ok())
        .unwrap_or_else(|| panic!("record has no text header {key}: {:?}", record.headers))
}

/// A fresh Azurite container (created) and an `abfss://` URL to a folder in
/// it, for storage and registry tests.
pub fn azurite_url(prefix: &str, folder: &str) -> String {
    let container: String = fresh_topic(prefix)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(60)
        .collect();
    let created = azurite::create_container(&container);
    assert_eq!(created.status, 201, "container created: {}", created.text());
    format!(
        "abfss://{container}@{}.dfs.core.windows.net/{folder}",
        azurite::ACCOUNT
    )
}

/// An enrichment worker running in a thread until stopped, switching to
/// newly activated versions when given a registry watch.
pub struct EnrichWorker {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<sluice_host::enrich::EnrichStats>,
    /// The worker's totals after its latest step.
    totals: Arc<std::sync::Mutex<sluice_host::enrich::EnrichStats>>,
}

impl EnrichWorker {
    pub fn start(
        definition: &sluice_host::enrich::PipelineDefinition,
        transform: Arc<Transform>,
        watch: Option<sluice_host::registry::TransformWatch>,
    ) -> EnrichWorker {
        Self::spawn(definition, transform, move |enricher| {
            if let Some(next) = watch.as_ref().and_then(|w| w.take_update()) {
                enricher
                    .swap_transform(&next)
                    .expect("swap to the new version");
            }
        })
    }

    /// A worker following `followed` as `sluice enrich` does: the active
    /// version and the shadow version. `shadow` holds the worker's own
    /// shadow report after each step (`None` when no shadow runs).
    pub fn following(
        definition: &sluice_host::enrich::PipelineDefinition,
        mut followed: sluice_host::transforms::Followed,
        shadow: Arc<std::sync::Mutex<Option<sluice_host::shadow::ShadowReport>>>,
    ) -> EnrichWorker {
        let transform = followed.transform().clone();
        Self::spawn(definition, transform, move |enricher| {
            if let Some(next) = followed.shadow_update() {
                enricher.set_shadow(next).expect("shadow started");
            }
            if let Some(next) = followed.update() {
                enricher
                    .swap_transform(&next)
                    .expect("swap to the new version");
            }
            if let Ok(mut seen) = shadow.lock() {
                *seen = enricher.shadow_report().cloned();
            }
        })
    }

    fn spawn(
        definition: &sluice_host::enrich::PipelineDefinition,
        transform: Arc<Transform>,
        mut between_steps: impl FnMut(&mut sluice_host::enrich::Enricher) + Send + 'static,
    ) -> EnrichWorker {
        use sluice_host::enrich::{Enricher, WorkerOptions, run_worker};
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let definition = definition.clone();
        let flag = stop.clone();
        let totals = Arc::new(std::sync::Mutex::new(
            sluice_host::enrich::EnrichStats::default(),
        ));
        let seen = totals.clone();
        let handle = std::thread::spawn(move || {
            let mut enricher = Enricher::new(definition, &transform).expect("enricher");
            let options = WorkerOptions {
                poll_wait: std::time::Duration::from_millis(50),
                commit_interval: std::time::Duration::from_millis(200),
                heartbeats: None,
            };
            run_worker(
                &broker(),
                &mut enricher,
                options,
                &flag,
                |enricher, total| {
                    if let Ok(mut seen) = seen.lock() {
                        *seen = *total;
                    }
                    between_steps(enricher);
                },
            )
            .expect("worker ran")
        });
        EnrichWorker {
            stop,
            handle,
            totals,
        }
    }
    /// The worker's totals after its latest step.
    pub fn totals(&self) -> sluice_host::enrich::EnrichStats {
        self.totals.lock().map(|t| *t).unwrap_or_default()
    }

    /// Waits until `done` holds of the worker's totals, for at most
    /// `within`; fails naming `what` with the totals otherwise.
    pub fn wait_until(
        &self,
        within: std::time::Duration,
        what: &str,
        done: impl Fn(&sluice_host::enrich::EnrichStats) -> bool,
    ) {
        let deadline = std::time::Instant::now() + within;
        loop {
            let totals = self.totals();
            if done(&totals) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} not reached in {within:?}: {totals:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn stop(self) -> sluice_host::enrich::EnrichStats {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("worker thread")
    }
}

/// Runs `future` to completion on a fresh current-thread runtime, for
/// tests of the async registry API.
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// A broker of a test's own (tansu, sqlite in a temporary folder, a free
/// port), for tests that stop and restart it: the shared broker serves
/// every other test running at the same time.
pub struct PrivateBroker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateBroker {
    pub fn start() -> PrivateBroker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut broker = PrivateBroker {
            dir: tempfile::tempdir().expect("a temporary folder"),
            port,
            child: None,
        };
        broker.launch();
        broker
    }

    pub fn config(&self) -> KafkaConfig {
        KafkaConfig::new(format!("127.0.0.1:{}", self.port))
    }

    /// Kills the broker (SIGKILL, as a crash would) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and storage.
    pub fn launch(&mut self) {
        // Where scripts/setup.sh installs it: `$CARGO_INSTALL_ROOT/bin`
        // when set (scripts/fresh-run.sh), else cargo's own.
        let tansu = std::env::var_os("CARGO_INSTALL_ROOT")
            .or_else(|| std::env::var_os("CARGO_HOME"))
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .expect("CARGO_INSTALL_ROOT, CARGO_HOME or HOME")
            .join("bin/tansu");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .expect("the broker's log");
        let child = std::process::Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu (scripts/setup.sh installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the private broker did not listen on {}",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Python of the project's tool virtualenv (`scripts/setup.sh` makes
/// it: pyarrow, fastavro, confluent-kafka, prometheus-client), or `None`
/// when it is not there.
pub fn python_tools() -> Option<PathBuf> {
    let cache = std::env::var_os("SLUICE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sluice")))?;
    let python = cache.join("pytools/bin/python");
    python.exists().then_some(python)
}

/// Samples of a Prometheus text exposition, parsed by the official Python
/// client's parser: `(name, labels, value)`.
pub fn parse_prometheus(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    use std::io::Write;
    let python = python_tools().expect("the tool virtualenv (scripts/setup.sh python-tools)");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/parse_metrics.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the parser");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the exposition");
    let output = child.wait_with_output().expect("the parser's output");
    assert!(
        output.status.success(),
        "the Prometheus parser refused:\n{text}"
    );
    serde_json::from_slice(&output.stdout).expect("samples as JSON")
}

/// Delta tables read back two ways: their log replayed here, independently
/// of the exporter's reader (every commit's adds and removes in order, then
/// the live files' rows), and, when the `delta-tools` virtualenv exists, by
/// the `deltalake` package and pyarrow (`tests/delta/read_table.py`).
pub mod delta {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use serde_json::Value;

    /// The tool virtualenv's python (it holds deltalake and pyarrow):
    /// `$SLUICE_DELTA_PYTHON` when set (scripts/test.sh sets it, and then it
    /// must be there), else the one [`crate::python_tools`] finds.
    pub fn python() -> Option<PathBuf> {
        if let Some(python) = std::env::var_os("SLUICE_DELTA_PYTHON") {
            let python = PathBuf::from(python);
            assert!(
                python.exists(),
                "SLUICE_DELTA_PYTHON={} does not exist: run scripts/setup.sh python-tools",
                python.display()
            );
            return Some(python);
        }
        crate::python_tools()
    }

    /// The table as the `deltalake` package and pyarrow read it (see
    /// `read_table.py` for `request`); `None`, with a message, when the
    /// virtualenv is absent from a plain `cargo test`.
    pub fn read_with_deltalake(request: &Value) -> Option<Value> {
        let Some(python) = python() else {
            eprintln!(
                "SKIPPED the deltalake read-back: no virtualenv at \
                 ~/.cache/sluice/pytools (scripts/setup.sh python-tools makes it; \
                 scripts/test.sh always does)"
            );
            return None;
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("delta/read_table.py");
        let output = std::process::Command::new(python)
            .arg(script)
            .arg(request.to_string())
            .output()
            .expect("run the deltalake reader");
        assert!(
            output.status.success(),
            "deltalake could not read {request}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(serde_json::from_slice(&output.stdout).expect("the reader prints JSON"))
    }

    /// Each commit's actions, by version, from `<table>/_delta_log`.
    pub fn commits(table: &Path) -> Vec<Vec<Value>> {
        let mut versions: Vec<(u64, PathBuf)> = std::fs::read_dir(table.join("_delta_log"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let version = name.strip_suffix(".json")?.parse().ok()?;
                Some((version, entry.path()))
            })
            .collect();
        versions.sort();
        for (index, (version, _)) in versions.iter().enumerate() {
            assert_eq!(*version, index as u64, "versions are contiguous from 0");
        }
        versions
            .iter()
            .map(|(_, path)| {
                std::fs::read_to_string(path)
                    .expect("a commit")
                    .lines()
                    .map(|line| serde_json::from_str(line).expect("one JSON action a line"))
                    .collect()
            })
            .collect()
    }

    /// The `add` actions of the table's live files, by path.
    pub fn live_adds(table: &Path) -> BTreeMap<String, Value> {
        let mut live = BTreeMap::new();
        for actions in commits(table) {
            for action in actions {
                if let Some(add) = action.get("add") {
                    live.insert(
                        add["path"].as_str().expect("a path").to_owned(),
                        add.clone(),
                    );
                }
                if let Some(remove) = action.get("remove") {
                    live.remove(remove["path"].as_str().expect("a path"));
                }
            }
        }
        live
    }

    /// How often each (partition, Kafka offset) is in the table: rows of
    /// its live files and records in their dead letters.
    pub fn stored(table: &Path) -> BTreeMap<(i32, i64), usize> {
        let mut seen = BTreeMap::new();
        for (path, add) in live_adds(table) {
            for at in crate::stored::parquet_offsets(&table.join(&path)) {
                *seen.entry(at).or_insert(0) += 1;
            }
            if let Some(dead) = add["tags"]["sluice.deadLetters"].as_str() {
                for at in crate::stored::dead_letter_offsets(&table.join(dead)) {
                    *seen.entry(at).or_insert(0) += 1;
                }
            }
        }
        seen
    }

    /// The `txn` versions of the table, by appId, the latest winning.
    pub fn txns(table: &Path) -> BTreeMap<String, i64> {
        let mut txns = BTreeMap::new();
        for actions in commits(table) {
            for action in actions {
                if let Some(txn) = action.get("txn") {
                    txns.insert(
                        txn["appId"].as_str().unwrap().to_owned(),
                        txn["version"].as_i64().unwrap(),
                    );
                }
            }
        }
        txns
    }
}
