//! `sluice transforms` and `sluice pipelines` through the admin HTTP API of
//! a real `sluice serve` (`--api URL --key KEY`), checked against the same
//! commands run straight on the server's registry folder (`--registry`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::http::{self, free_port};

const KEY: &str = "cli-test-admin-key-0123456789abcdef01";

/// Variables that would choose a backend behind the test's back.
const TARGET_VARS: [&str; 7] = [
    "SLUICE_REGISTRY",
    "SLUICE_API_URL",
    "SLUICE_ADMIN_KEY",
    "SLUICE_API_KEY",
    "SLUICE_AZURE_ACCOUNT",
    "SLUICE_AZURE_KEY",
    "SLUICE_AZURE_ENDPOINT",
];

/// `sluice serve` on a free port with a registry in a temporary folder;
/// killed when dropped.
struct Server {
    child: Child,
    url: String,
    registry: PathBuf,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        for var in TARGET_VARS {
            command.env_remove(var);
        }
        let child = command
            .args(["serve", "--port", &port.to_string()])
            .env("SLUICE_REGISTRY", &registry)
            .env("SLUICE_ADMIN_KEY", KEY)
            .env("SLUICE_CACHE_DIR", dir.path().join("cache"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sluice serve");
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            registry,
            dir,
        };
        server.wait_ready(port);
        server
    }

    fn wait_ready(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while http::get(port, "/", &[]).is_none() {
            assert!(
                Instant::now() < deadline,
                "sluice serve did not answer in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// The CLI through the API with `key`.
    fn api_with_key(&self, key: &str, args: &[&str]) -> Output {
        sluice(
            args,
            &[("SLUICE_API_URL", &self.url), ("SLUICE_ADMIN_KEY", key)],
        )
    }

    /// The CLI through the API, flags rather than variables.
    fn api(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--api", &self.url, "--key", KEY]);
        self.ok(sluice(&all, &[]))
    }

    /// The CLI straight on the registry folder.
    fn direct(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--registry", self.registry.to_str().unwrap()]);
        self.ok(sluice(&all, &[]))
    }

    /// The same command both ways; both print the same.
    fn both(&self, args: &[&str]) -> String {
        let via_api = self.api(args);
        assert_eq!(via_api, self.direct(args), "`{}` differs", args.join(" "));
        via_api
    }

    fn ok(&self, output: Output) -> String {
        assert!(
            output.status.success(),
            "sluice failed: {}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sluice(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    for var in TARGET_VARS {
        command.env_remove(var);
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .env(
            "SLUICE_CACHE_DIR",
            std::env::temp_dir().join("sluice-cli-registry-cache"),
        )
        .stdin(Stdio::null())
        .output()
        .expect("run sluice")
}

fn guest(name: &str) -> String {
    let path = sluice_tests::guests_dir().join(name);
    assert!(
        path.exists(),
        "{} missing: run scripts/build-guests.sh",
        path.display()
    );
    path.to_str().unwrap().to_owned()
}

/// `NAME VERSION (WORLD, N bytes)[, active]` → VERSION, checking the rest.
fn uploaded_version(line: &str, name: &str, active: bool) -> String {
    let rest = line
        .trim_end()
        .strip_prefix(&format!("{name} "))
        .unwrap_or_else(|| panic!("unexpected upload line: {line}"));
    let (version, rest) = rest.split_once(' ').unwrap();
    assert_eq!(version.len(), 64, "{line}");
    assert!(version.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    assert!(rest.starts_with("(transformer, "), "{line}");
    assert_eq!(rest.ends_with(", active"), active, "{line}");
    version.to_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn registry_commands_through_the_admin_api_match_the_registry() {
    let server = Server::start();
    let name = "detect";

    let first = server.api(&[
        "transforms",
        "upload",
        &guest("misbehave.wasm"),
        "--name",
        name,
        "--activate",
    ]);
    let v1 = uploaded_version(&first, name, true);
    let second = server.api(&[
        "transforms",
        "upload",
        &guest("language_detect.wasm"),
        "--name",
        name,
    ]);
    let v2 = uploaded_version(&second, name, false);
    assert_ne!(v1, v2);

    assert_eq!(
        server.both(&["transforms", "list"]),
        format!("{name} active {v1} (2 versions)\n")
    );
    let versions = server.both(&["transforms", "list", name]);
    let lines: Vec<&str> = versions.lines().collect();
    assert_eq!(lines.len(), 2, "{versions}");
    assert!(
        lines[0].starts_with(&format!("* {v1} transformer ")),
        "{versions}"
    );
    assert!(
        lines[1].starts_with(&format!("  {v2} transformer ")),
        "{versions}"
    );

    assert_eq!(
        server.api(&["transforms", "activate", name, &v2[..10]]),
        format!("{name} active {v2} (2 versions)\n")
    );
    assert_eq!(
        server.direct(&["transforms", "list"]),
        format!("{name} active {v2} (2 versions)\n")
    );
    assert_eq!(
        server.api(&["transforms", "rollback", name]),
        format!("{name} active {v1} (2 versions)\n")
    );

    // The active version cannot go: the server's 409 and message.
    let refused = server.api_with_key(KEY, &["transforms", "delete", name, &v1[..10]]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("409"), "{stderr}");
    assert!(
        stderr.contains(&format!("deleting `{name}` version")),
        "{stderr}"
    );

    assert_eq!(
        server.api(&["transforms", "delete", name, &v2[..10]]),
        format!("{name} active {v1} (1 versions)\n")
    );
    assert_eq!(
        server.both(&["transforms", "list"]),
        format!("{name} active {v1} (1 versions)\n")
    );

    let definitions = format!(
        r#"[
          {{"name": "posts-enriched", "inputs": ["posts"], "outputs": ["posts_enriched"],
            "transform": "{name}", "dead_letter": "posts.dlq"}},
          {{"name": "pinned", "inputs": ["a", "b"], "outputs": ["out"],
            "transform": {{"name": "{name}", "version": "{}"}},
            "join": {{"key": "id", "timeout_ms": 1000}},
            "dead_letter": "dlq", "metadata": {{"team": "search"}}}}
        ]"#,
        &v1[..12]
    );
    let file = write(server.dir.path(), "pipelines.json", &definitions);
    assert_eq!(
        server.api(&["pipelines", "apply", &file]),
        "applied posts-enriched\napplied pinned\n"
    );
    assert_eq!(
        server.both(&["pipelines", "list"]),
        format!(
            "pinned: a,b -> out via {name}\nposts-enriched: posts -> posts_enriched via {name}\n"
        )
    );
    let topics = write(
        server.dir.path(),
        "topics.json",
        r#"[{"topic": "posts_enriched", "group_id": "export-g"}]"#,
    );
    assert_eq!(
        server.both(&["pipelines", "topology", "--topics", &topics]),
        format!(
            "pipeline pinned ({name}@{}, join on id within 1000 ms): a, b -> out; failures -> dlq\n\
             pipeline posts-enriched ({name}): posts -> posts_enriched; failures -> posts.dlq\n\
             export posts_enriched: posts_enriched -> Parquet files\n",
            &v1[..12]
        )
    );
    let dot = server.both(&["pipelines", "topology", "--format", "dot"]);
    assert!(dot.starts_with("digraph sluice {"), "{dot}");
    for edge in [
        r#""topic:posts" -> "pipeline:posts-enriched";"#,
        r#""pipeline:posts-enriched" -> "topic:posts_enriched";"#,
        r#""pipeline:pinned" -> "topic:dlq" [style=dashed, color=red];"#,
    ] {
        assert!(dot.contains(edge), "{edge} in {dot}");
    }
    let pinned = server.both(&["pipelines", "get", "pinned"]);
    let pinned: serde_json::Value = serde_json::from_str(&pinned).unwrap();
    assert_eq!(pinned["join"]["key"], "id");
    assert_eq!(pinned["metadata"]["team"], "search");

    // An invalid file: the server's 400 names the entry and field.
    let bad = write(
        server.dir.path(),
        "bad.json",
        r#"[{"name": "x", "inputs": [], "outputs": ["o"], "transform": "t"}]"#,
    );
    let refused = server.api_with_key(KEY, &["pipelines", "apply", &bad]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("400 Bad Request"), "{stderr}");
    assert!(stderr.contains("entry [0]"), "{stderr}");

    assert_eq!(
        server.api(&["pipelines", "delete", "posts-enriched"]),
        "deleted posts-enriched\n"
    );
    assert_eq!(
        server.both(&["pipelines", "list"]),
        format!("pinned: a,b -> out via {name}\n")
    );
    let missing = server.api_with_key(KEY, &["pipelines", "get", "posts-enriched"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("404 Not Found"), "{stderr}");

    // A wrong key: the 401 and the server's message, nothing printed.
    let denied = server.api_with_key("not-the-key", &["transforms", "list"]);
    assert!(!denied.status.success());
    assert!(denied.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(stderr.contains("401 Unauthorized"), "{stderr}");
    assert!(stderr.contains("wrong key"), "{stderr}");
}

#[test]
fn exactly_one_of_registry_and_api_is_required() {
    let neither = sluice(&["transforms", "list"], &[]);
    assert!(!neither.status.success());
    let stderr = String::from_utf8_lossy(&neither.stderr);
    for name in ["--registry", "--api", "SLUICE_REGISTRY", "SLUICE_API_URL"] {
        assert!(stderr.contains(name), "{name} not named: {stderr}");
    }

    let dir = tempfile::tempdir().unwrap();
    let both = sluice(
        &["pipelines", "list", "--api", "http://127.0.0.1:9"],
        &[("SLUICE_REGISTRY", dir.path().to_str().unwrap())],
    );
    assert!(!both.status.success());
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert!(stderr.contains("not both"), "{stderr}");
}

/// `sluice transforms shadow`, `shadow-report` and `shadow --stop` print
/// the same through the admin API and straight on the registry.
#[test]
fn shadow_commands_through_the_admin_api_match_the_registry() {
    let server = Server::start();
    let name = "stay";
    let v1 = uploaded_version(
        &server.api(&[
            "transforms",
            "upload",
            &guest("stay_category.wasm"),
            "--name",
            name,
            "--activate",
        ]),
        name,
        true,
    );
    let v2 = uploaded_version(
        &server.api(&[
            "transforms",
            "upload",
            &guest("stay_category_v2.wasm"),
            "--name",
            name,
        ]),
        name,
        false,
    );
    assert_eq!(
        server.both(&["transforms", "shadow-report", name]),
        format!("{name}: no shadow run\n")
    );
    assert_eq!(
        server.api(&["transforms", "shadow", name, &v2[..12]]),
        format!("{name} active {v1} (2 versions) shadowed by {v2}\n")
    );
    assert_eq!(
        server.both(&["transforms", "shadow-report", name]),
        format!(
            "{name}: {} shadows the active {}\nno instance has reported yet\n",
            &v2[..12],
            &v1[..12]
        )
    );
    let json: serde_json::Value =
        serde_json::from_str(&server.both(&["transforms", "shadow-report", name, "--json"]))
            .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"transform": name, "active": v1, "shadow": v2, "report": null})
    );
    let refused = sluice(
        &[
            "transforms",
            "shadow",
            name,
            &v1[..12],
            "--registry",
            server.registry.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("is the active one"), "{error}");
    assert_eq!(
        server.direct(&["transforms", "shadow", name, "--stop"]),
        format!("{name} active {v1} (2 versions), no shadow\n")
    );
    assert_eq!(
        server.both(&["transforms", "shadow-report", name]),
        format!("{name}: no shadow run\n")
    );
}
