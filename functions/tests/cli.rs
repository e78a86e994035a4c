//! The `sluice` binary as a user runs it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn sluice_transform(
    wasm: &str,
    input: &str,
    extra: &[&str],
) -> (Vec<Value>, std::process::ExitStatus) {
    let path = sluice_tests::guests_dir().join(wasm);
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["transform", "--wasm"])
        .arg(&path)
        .args(extra)
        .env("SLUICE_CACHE_DIR", tempfile_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sluice");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let lines = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect();
    (lines, output.status)
}

fn tempfile_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sluice-cli-test-{}", std::process::id()))
}

#[test]
fn transform_writes_one_line_per_input_line() {
    let input = concat!(
        r#"{"id":1,"srch_ci":"2017-08-13","srch_co":"2017-08-20"}"#,
        "\n",
        "\n",
        "not json\n",
        r#"{"id":2,"srch_ci":null,"srch_co":"2017-08-20"}"#,
        "\n",
    );
    let (lines, status) = sluice_transform("stay_category.wasm", input, &[]);
    assert!(status.success());
    assert_eq!(lines.len(), 3, "blank lines are skipped: {lines:?}");
    assert_eq!(lines[0]["emit"][0]["stay_category"], "Standard stay");
    assert_eq!(lines[0]["emit"][0]["id"], 1);
    assert!(
        lines[1]["fail"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(lines[2]["emit"][0]["stay_category"], "Erroneous data");
}

#[test]
fn transform_reports_drops_and_guest_errors_with_the_line_number() {
    let input = "{\"do\":\"drop\"}\n{\"do\":\"trap\"}\n{\"do\":\"loop\"}\n{\"n\":1}\n";
    let (lines, status) = sluice_transform(
        "misbehave.wasm",
        input,
        &["--deadline-ms", "200", "--batch-size", "2"],
    );
    assert!(status.success());
    assert_eq!(lines[0]["drop"], true);
    assert_eq!(lines[1]["kind"], "trap");
    assert!(
        lines[1]["error"].as_str().unwrap().contains("offset 2"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2]["kind"], "deadline");
    assert_eq!(lines[3]["emit"][0]["n"], 1);
}

#[test]
fn a_missing_component_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["transform", "--wasm", "/nonexistent/thing.wasm"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/thing.wasm"), "{stderr}");
}

mod export {
    use std::process::Command;

    use sluice_host::kafka::ensure_topic;
    use sluice_tests::{broker, fresh_topic, produce_to};

    fn export(dir: &std::path::Path, topics: &str) -> std::process::Output {
        std::fs::write(dir.join("topics.json"), topics).unwrap();
        let brokers = broker().bootstrap_servers;
        std::fs::write(
            dir.join("connections.json"),
            format!(r#"{{"bootstrap_servers": "{brokers}"}}"#),
        )
        .unwrap();
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("export")
            .arg("--topics")
            .arg(dir.join("topics.json"))
            .arg("--connections")
            .arg(dir.join("connections.json"))
            .arg("--out")
            .arg(dir.join("out"))
            .output()
            .unwrap()
    }

    #[test]
    fn one_failing_topic_does_not_stop_the_others() {
        let config = broker();
        let good = fresh_topic("cli-export");
        ensure_topic(&config, &good, 2).unwrap();
        for partition in 0..2 {
            let values: Vec<String> = (0..3).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
            produce_to(&config, &good, partition, &values);
        }
        let missing = fresh_topic("cli-missing");
        let dir = tempfile::tempdir().unwrap();
        let topics = format!(
            r#"[{{"topic": "{good}", "group_id": "{good}-g", "num_messages": null, "reset_offsets": true,
                  "starting_offsets": null, "offset_increment": {{"0": 0}}}},
                {{"topic": "{missing}", "group_id": "g", "reset_offsets": true}}]"#
        );
        let output = export(dir.path(), &topics);
        assert_eq!(
            output.status.code(),
            Some(1),
            "a failed topic fails the run"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let good_line = stdout
            .lines()
            .find(|l| l.starts_with(&good))
            .expect("summary row");
        let cells: Vec<&str> = good_line.split_whitespace().collect();
        assert_eq!(&cells[1..5], ["2", "6", "0", "2"], "{stdout}");
        assert!(good_line.ends_with("ok"), "{stdout}");
        let missing_line = stdout
            .lines()
            .find(|l| l.starts_with(&missing))
            .expect("summary row");
        assert!(
            missing_line.contains("FAILED") && missing_line.contains("does not exist"),
            "{stdout}"
        );
        let partition_0 = dir
            .path()
            .join(format!("out/topic={good}/partition=0/{good}+0+0-2.parquet"));
        assert!(partition_0.is_file(), "{stdout}");
    }

    #[test]
    fn a_bad_topics_file_names_the_entry_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let output = export(
            dir.path(),
            r#"[{"topic": "t", "group_id": "g", "num_messages": -1}]"#,
        );
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("topics.json") && stderr.contains("entry 0 (topic `t`)"),
            "{stderr}"
        );
        assert!(stderr.contains("field `num_messages`"), "{stderr}");
    }
}

mod fetch {
    use std::process::Command;

    use sluice_host::kafka::ensure_topic;
    use sluice_tests::{broker, fresh_topic, guests_dir, produce_to};

    fn topic() -> String {
        let config = broker();
        let topic = fresh_topic("cli-fetch");
        ensure_topic(&config, &topic, 1).unwrap();
        let values = vec![
            r#"{"id":0,"srch_ci":"2017-08-13","srch_co":"2017-08-14"}"#.to_owned(),
            r#"{"id":1,"srch_ci":"2017-08-13","srch_co":"2017-08-30"}"#.to_owned(),
            "not json, with a comma".to_owned(),
            r#"{"id":3}"#.to_owned(),
        ];
        produce_to(&config, &topic, 0, &values);
        topic
    }

    fn fetch(args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("fetch")
            .args(args)
            .env("SLUICE_KAFKA_BROKERS", broker().bootstrap_servers)
            .env("SLUICE_TRANSFORMS_DIR", guests_dir())
            .output()
            .unwrap()
    }

    #[test]
    fn json_lines_with_a_dry_run_outcome_beside_each_record() {
        let topic = topic();
        let output = fetch(&[
            "--topic",
            &topic,
            "--offset",
            "1",
            "--count",
            "2",
            "--transform",
            "stay-category",
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "count is respected");
        assert_eq!(lines[0]["offset"], 1);
        assert_eq!(
            lines[0]["outcome"]["emit"][0]["value"]["stay_category"],
            "Long stay"
        );
        assert_eq!(lines[1]["value"], "not json, with a comma");
        assert!(
            lines[1]["outcome"]["fail"]
                .as_str()
                .unwrap()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn where_and_newest_first_search_the_topic() {
        let topic = topic();
        let output = fetch(&[
            "--topic",
            &topic,
            "--where",
            "value.srch_ci == \"2017-08-13\" or value contains 'comma'",
            "--newest-first",
            "--count",
            "100",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let offsets: Vec<i64> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(offsets, vec![2, 1, 0], "{stderr}");
        assert!(stderr.contains("4 looked at"), "{stderr}");

        let bad = fetch(&["--topic", &topic, "--where", "value.id = 1"]);
        assert!(!bad.status.success());
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(stderr.contains("position 10"), "{stderr}");
    }

    /// Keys that are not text (big-endian ints) placed by librdkafka's
    /// `murmur2_random`: `--key-hex` finds one in the partition that
    /// partitioner names and prints each key in hex; a bad one names the flag.
    #[test]
    fn a_key_in_hex_is_searched_with_the_named_partitioner() {
        use sluice_host::kafka::{ProduceRecord, Producer};
        use sluice_host::search::Partitioner;

        let config = broker();
        let topic = fresh_topic("cli-fetch-key");
        ensure_topic(&config, &topic, 4).unwrap();
        let records: Vec<ProduceRecord> = (0..100u32)
            .map(|i| ProduceRecord {
                timestamp: None,
                topic: topic.clone(),
                partition: Partitioner::Murmur2Random.partition(&i.to_be_bytes(), 4),
                key: Some(i.to_be_bytes().to_vec()),
                value: Some(format!(r#"{{"i":{i}}}"#).into_bytes()),
                headers: Vec::new(),
            })
            .collect();
        Producer::new(&config).unwrap().send_all(&records).unwrap();
        let partition = Partitioner::Murmur2Random
            .partition(&42u32.to_be_bytes(), 4)
            .unwrap();
        let output = fetch(&[
            "--topic",
            &topic,
            "--key-hex",
            "0000002a",
            "--partitioner",
            "murmur2_random",
            "--count",
            "10",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert_eq!(lines[0]["key_hex"], "0000002a");
        assert_eq!(lines[0]["value"]["i"], 42);
        assert_eq!(lines[0]["partition"], partition);
        assert!(
            stderr.contains(&format!(
                "murmur2_random puts the key in partition {partition}"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("partitions [{partition}]")),
            "{stderr}"
        );

        for (args, expected) in [
            (vec!["--key-hex", "2a0"], "--key-hex: `2a0` is not hex"),
            (vec!["--key-base64", "*"], "--key-base64: `*` is not base64"),
            (vec!["--key", "a", "--key-hex", "61"], "cannot be used with"),
            (
                vec!["--key", "a", "--partitioner", "random"],
                "search every partition",
            ),
        ] {
            let bad = fetch(&[&["--topic", topic.as_str()], args.as_slice()].concat());
            assert!(!bad.status.success(), "{args:?}");
            let stderr = String::from_utf8_lossy(&bad.stderr);
            assert!(stderr.contains(expected), "{args:?}: {stderr}");
        }
    }

    #[test]
    fn a_transform_name_is_never_taken_as_a_path_but_wasm_takes_a_file() {
        let topic = topic();
        let file = guests_dir().join("stay_category.wasm");
        let file = file.to_str().unwrap();
        let as_name = fetch(&["--topic", &topic, "--count", "1", "--transform", file]);
        assert!(!as_name.status.success());
        let error = String::from_utf8_lossy(&as_name.stderr);
        assert!(error.contains("not a path"), "{error}");
        let as_file = fetch(&["--topic", &topic, "--count", "1", "--wasm", file]);
        assert!(
            as_file.status.success(),
            "{}",
            String::from_utf8_lossy(&as_file.stderr)
        );
        let line: serde_json::Value =
            serde_json::from_str(String::from_utf8(as_file.stdout).unwrap().trim()).unwrap();
        assert_eq!(
            line["outcome"]["emit"][0]["value"]["stay_category"],
            "Short stay"
        );
    }

    #[test]
    fn csv_quotes_and_parquet_files_and_bad_offsets() {
        let topic = topic();
        let output = fetch(&[
            "--topic", &topic, "--offset", "2", "--count", "100", "--format", "csv",
        ]);
        let csv = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "partition,offset,timestamp,key,value");
        assert_eq!(lines.len(), 3, "stops at the end of the partition: {csv}");
        assert!(lines[1].ends_with(",,\"not json, with a comma\""), "{csv}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("records.parquet");
        let output = fetch(&[
            "--topic",
            &topic,
            "--format",
            "parquet",
            "--out",
            file.to_str().unwrap(),
            "--count",
            "4",
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&file).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 4);

        let output = fetch(&["--topic", &topic, "--offset", "50"]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("outside the available range 0..4"),
            "{stderr}"
        );
    }
}

#[test]
fn gen_rate_limits_how_fast_records_are_produced() {
    let topic = sluice_tests::fresh_topic("gen-rate");
    let started = std::time::Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "gen", "expedia", "--topic", &topic, "--count", "300", "--rate", "200",
        ])
        .env(
            "SLUICE_KAFKA_BROKERS",
            sluice_tests::broker().bootstrap_servers,
        )
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 300 records at 200/s cannot finish before 1.5 s; a lower bound only,
    // a loaded machine may take longer.
    assert!(
        elapsed >= std::time::Duration::from_millis(1200),
        "300 records at --rate 200 took only {elapsed:?}"
    );
    let records = sluice_tests::read_all(&sluice_tests::broker(), &topic);
    assert_eq!(records.len(), 300);
}

/// The first command a newcomer runs: the stay table, the export's files,
/// how to open the pages; and a clean log (no ERROR or WARN line, no
/// colour codes when stderr is not a terminal).
#[test]
fn the_demo_shows_the_main_job_with_a_clean_log() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["demo", "--records", "300", "--out"])
        .arg(dir.path().join("out"))
        .env(
            "SLUICE_KAFKA_BROKERS",
            sluice_tests::broker().bootstrap_servers,
        )
        .env("SLUICE_TRANSFORMS_DIR", sluice_tests::guests_dir())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Short stay"), "{stdout}");
    assert_eq!(stdout.matches(".parquet (").count(), 3, "{stdout}");
    assert!(stdout.contains("/topology"), "{stdout}");
    for line in stderr.lines() {
        assert!(
            !line.contains(" ERROR ") && !line.contains(" WARN "),
            "a successful demo logged: {line}"
        );
    }
    assert!(!stderr.contains('\u{1b}'), "colour codes in a captured log");

    // The printed `sluice serve` shows the whole flow: the registry it
    // names holds the two transforms and the pipeline the demo ran, and
    // the fetch page's dry run finds stay-category.
    let out = dir.path().join("out");
    let registry = out.join("registry");
    let output = stdout
        .lines()
        .find_map(|l| l.split("(topic ").nth(1)?.split(',').next())
        .expect("the printed command names the output topic")
        .to_owned();
    assert!(
        stdout.contains(&format!("--registry {}", registry.display())),
        "{stdout}"
    );
    const KEY: &str = "demo-test-key-0123456789abcdef0123456789";
    let out_text = out.to_string_lossy().into_owned();
    let app = sluice_tests::app::App::start(
        Path::new(env!("CARGO_BIN_EXE_sluice")),
        &[
            "--topics",
            &format!("{out_text}/topics.json"),
            "--connections",
            &format!("{out_text}/connections.json"),
            "--registry",
            registry.to_str().unwrap(),
            "--admin-key",
            KEY,
            "--api-key",
            KEY,
        ],
        &[(
            "SLUICE_KAFKA_BROKERS",
            sluice_tests::broker().bootstrap_servers.as_str(),
        )],
    );
    let transforms = app.get("/api/transforms", KEY);
    assert_eq!(transforms.status, 200, "{}", transforms.text());
    let listed = transforms.text();
    assert!(
        listed.contains("\"stay-category\"") && listed.contains("\"stay-summary\""),
        "{listed}"
    );
    let pipeline = app.get("/api/pipelines/stay-category", KEY);
    assert_eq!(pipeline.status, 200, "{}", pipeline.text());
    assert_eq!(pipeline.json()["outputs"][0], output.as_str());
    let topology = app.get("/api/topology", KEY).text();
    assert!(
        topology.contains("stay-category") && topology.contains(&output),
        "{topology}"
    );
    let fetched = app.get(
        &format!("/api/fetch?topic={output}&count=2&transform=stay-category"),
        KEY,
    );
    assert_eq!(fetched.status, 200, "{}\n{}", fetched.text(), app.log());
    let fetched = fetched.json();
    assert_eq!(
        fetched["records"].as_array().map(Vec::len),
        Some(2),
        "{fetched}"
    );
    assert!(
        fetched["records"][0].get("outcome").is_some(),
        "the dry run beside each record: {fetched}"
    );
}

/// The commands listed under `Commands:` in a help text (not `help`).
fn commands_in(help: &str) -> Vec<String> {
    help.split("Commands:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The book's command-line reference is the binary's own help, every
/// command and subcommand, so it cannot drift from what `--help` says.
/// With `SLUICE_UPDATE_DOCS=1` the page is rewritten instead of checked.
#[test]
fn the_command_line_reference_is_the_help() {
    // No environment: clap shows an `env` setting's current value.
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .arg("--help")
            .env_clear()
            .output()
            .unwrap();
        assert!(output.status.success(), "sluice {args:?} --help");
        String::from_utf8(output.stdout).unwrap()
    };
    let mut page = String::from(
        "# The command line\n\n\
         Every command of `sluice`, as its `--help` says it (this page is \
         generated from the binary and checked by \
         `functions/tests/cli.rs::the_command_line_reference_is_the_help`).\n",
    );
    let section = |args: &[&str], page: &mut String| {
        let text = help(args);
        let title = if args.is_empty() {
            "sluice".to_owned()
        } else {
            format!("sluice {}", args.join(" "))
        };
        page.push_str(&format!("\n## `{title}`\n\n```text\n{}```\n", text));
        text
    };
    let top = section(&[], &mut page);
    for command in commands_in(&top) {
        let text = section(&[&command], &mut page);
        for sub in commands_in(&text) {
            section(&[&command, &sub], &mut page);
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/reference/cli.md");
    if std::env::var_os("SLUICE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == page,
        "docs/src/reference/cli.md differs from the help; rewrite it with \
         SLUICE_UPDATE_DOCS=1 cargo test -p sluice --test integration --features integration-tests cli::the_command_line_reference_is_the_help"
    );
}
