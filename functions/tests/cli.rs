//! The `sluice` binary as a user runs it.

use std::io::Write;
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
