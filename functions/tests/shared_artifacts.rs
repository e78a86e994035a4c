//! Two `sluice serve` processes, each with an artifact folder of its own,
//! on one registry: a version uploaded through the first is compiled there,
//! once; the second loads the artifact the upload stored and compiles
//! nothing, as its `/metrics` count.

use std::path::Path;

use sluice_tests::app::App;
use sluice_tests::{guest, http};

const KEY: &str = "shared-artifacts-test-key-0123456789abcdef";

/// `sluice_transform_loads_total{transform="echo", artifact=...}` in an
/// app's metrics, by `artifact`.
fn loads(app: &App, artifact: &str) -> f64 {
    let text = app.get("/metrics", KEY).text();
    text.lines()
        .filter(|line| {
            line.starts_with("sluice_transform_loads_total{")
                && line.contains(r#"transform="echo""#)
                && line.contains(&format!(r#"artifact="{artifact}""#))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Two apps on one registry folder, started with `extra` arguments.
fn two_apps(registry: &Path, extra: &[&str]) -> (App, App) {
    let registry = registry.to_str().unwrap();
    let mut args = vec!["--registry", registry, "--admin-key", KEY, "--api-key", KEY];
    args.extend_from_slice(extra);
    let binary = Path::new(env!("CARGO_BIN_EXE_sluice"));
    (
        App::start(binary, &args, &[]),
        App::start(binary, &args, &[]),
    )
}

/// Uploads the misbehave guest as `echo` through `first` and activates it.
fn upload(first: &App) {
    let uploaded = http::request(
        first.port,
        "PUT",
        "/api/transforms/echo?activate=true",
        &[("x-functions-key", KEY)],
        &guest("misbehave"),
    )
    .expect("the first app answers");
    assert_eq!(uploaded.status, 201, "{}\n{}", uploaded.text(), first.log());
}

/// Invokes `echo` through `second` on one record, which it echoes.
fn invoke(second: &App) {
    let invoked = http::request(
        second.port,
        "POST",
        "/api/transforms/echo/invoke",
        &[
            ("x-functions-key", KEY),
            ("content-type", "application/json"),
        ],
        br#"[{"id": 1}]"#,
    )
    .expect("the second app answers");
    assert_eq!(invoked.status, 200, "{}\n{}", invoked.text(), second.log());
    assert_eq!(
        invoked.json()["outcomes"].as_array().map(Vec::len),
        Some(1),
        "{}",
        invoked.text()
    );
}

#[test]
fn a_version_uploaded_through_one_app_is_loaded_precompiled_by_another() {
    let registry = tempfile::tempdir().unwrap();
    let (first, second) = two_apps(registry.path(), &[]);
    upload(&first);
    assert_eq!(loads(&first, "compiled"), 1.0, "{}", first.log());
    invoke(&second);
    assert_eq!(loads(&second, "shared"), 1.0, "{}", second.log());
    assert_eq!(loads(&second, "compiled"), 0.0, "{}", second.log());
}

/// `--no-shared-artifacts`: for a registry whose writers are trusted less
/// than the binary, nothing precompiled is stored there or loaded from it.
#[test]
fn with_no_shared_artifacts_each_app_compiles_and_stores_no_artifact() {
    let registry = tempfile::tempdir().unwrap();
    let (first, second) = two_apps(registry.path(), &["--no-shared-artifacts"]);
    upload(&first);
    assert_eq!(loads(&first, "compiled"), 1.0, "{}", first.log());
    let artifacts = registry.path().join("transforms/echo/artifacts");
    assert!(!artifacts.exists(), "an artifact stored in {artifacts:?}");
    invoke(&second);
    assert_eq!(loads(&second, "compiled"), 1.0, "{}", second.log());
    assert_eq!(loads(&second, "shared"), 0.0, "{}", second.log());
}
