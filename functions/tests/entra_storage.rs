//! Storage without keys: the export, the import and the registry sign in
//! to a second Azurite, started here in its OAuth mode (`--oauth basic`,
//! HTTPS with a certificate made for the test and trusted through
//! `SSL_CERT_FILE`), with tokens from a local App Service managed-identity
//! endpoint (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`), each `sluice` command
//! a process of its own as on a Functions host. Azurite checks each
//! token's issuer, audience and lifetime (not its signature), so a token
//! for another audience is refused, which the test also shows. No log line
//! of any run holds the identity header or a token.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sluice_host::identity::{Credential, STORAGE_SCOPE, Secret, Source};
use sluice_host::kafka::ensure_topic;
use sluice_tests::http::{free_port, wait_until_listening};
use sluice_tests::identity::TokenEndpoint;
use sluice_tests::{broker, fresh_topic, guests_dir, read_all};

const ACCOUNT: &str = "devstoreaccount1";

/// Variables of the developer's or CI's environment that would choose
/// credentials behind the test's back.
const CREDENTIAL_VARS: [&str; 12] = [
    "SLUICE_AZURE_KEY",
    "SLUICE_AZURE_ACCOUNT",
    "SLUICE_AZURE_ENDPOINT",
    "SLUICE_REGISTRY",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_MSI_ENDPOINT",
    "AZURE_USE_AZURE_CLI",
    "RUST_LOG",
];

/// Azurite with OAuth on a free port; stopped when dropped.
struct OAuthAzurite {
    child: Child,
    port: u16,
    certificate: PathBuf,
    _dir: tempfile::TempDir,
}

impl OAuthAzurite {
    fn start() -> OAuthAzurite {
        let dir = tempfile::tempdir().unwrap();
        let (certificate, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&certificate)
            .output()
            .expect("openssl");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let cache = std::env::var_os("SLUICE_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/sluice")
            });
        let main = cache.join("azurite/node_modules/azurite/dist/src/blob/main.js");
        let port = free_port();
        let child = Command::new("node")
            .arg(main)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--skipApiVersionCheck", "--loose"])
            .args(["--disableTelemetry", "--oauth", "basic"])
            .arg("--cert")
            .arg(&certificate)
            .arg("--key")
            .arg(&key)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Azurite (scripts/setup.sh installs it)");
        wait_until_listening(port, Duration::from_secs(60), "Azurite with OAuth");
        OAuthAzurite {
            child,
            port,
            certificate,
            _dir: dir,
        }
    }

    fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// A Blob API call with `token`, through curl trusting the certificate.
    fn call(&self, method: &str, path: &str, token: &str, body: Option<&Path>) -> String {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "-X", method, "-w", "\n%{http_code}"])
            .arg("--cacert")
            .arg(&self.certificate)
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args([
                "-H",
                "x-ms-version: 2021-08-06",
                "-H",
                "x-ms-blob-type: BlockBlob",
            ]);
        match body {
            Some(file) => curl
                .arg("--data-binary")
                .arg(format!("@{}", file.display())),
            None => curl.args(["-H", "Content-Length: 0"]),
        };
        let output = curl
            .arg(format!("{}{path}", self.endpoint()))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for OAuthAzurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice ARGS` as the Functions host runs it: a managed identity, the
/// test's certificate trusted, no key anywhere.
fn sluice(azurite: &OAuthAzurite, tokens: &TokenEndpoint, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    for var in CREDENTIAL_VARS {
        command.env_remove(var);
    }
    command
        .args(args)
        .env("IDENTITY_ENDPOINT", tokens.app_service())
        .env("IDENTITY_HEADER", &tokens.header)
        .env("SSL_CERT_FILE", &azurite.certificate)
        .env("SLUICE_AZURE_ACCOUNT", ACCOUNT)
        .env("SLUICE_AZURE_ENDPOINT", azurite.endpoint())
        .env("SLUICE_KAFKA_BROKERS", broker().bootstrap_servers)
        .stdin(Stdio::null())
        .output()
        .expect("run sluice")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn export_import_and_registry_sign_in_to_storage_with_a_managed_identity() {
    let azurite = OAuthAzurite::start();
    let tokens = TokenEndpoint::start(Duration::from_secs(3600));
    let work = tempfile::tempdir().unwrap();
    // The test's own calls (the container, the import's file) with a token
    // of the same endpoint.
    let credential = Arc::new(
        Credential::new(Source::AppService {
            endpoint: tokens.app_service(),
            header: Secret::new(tokens.header.clone()),
            client_id: None,
        })
        .unwrap(),
    );
    let token = credential.token_blocking(STORAGE_SCOPE).unwrap();
    let token = token.secret.expose();
    let created = azurite.call("PUT", "/lake?restype=container", token, None);
    assert!(created.ends_with("201"), "{created}");
    let mut runs = Vec::new();

    // The registry.
    let wasm = guests_dir().join("stay_category.wasm");
    let registry = "az://lake/registry";
    let upload = sluice(
        &azurite,
        &tokens,
        &[
            "transforms",
            "upload",
            wasm.to_str().unwrap(),
            "--name",
            "stay",
            "--activate",
            "--registry",
            registry,
        ],
    );
    assert!(upload.status.success(), "{}", text(&upload));
    runs.push(upload);
    let listed = sluice(
        &azurite,
        &tokens,
        &["transforms", "list", "--registry", registry],
    );
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(text(&listed).contains("stay"), "{}", text(&listed));
    runs.push(listed);

    // The import, from a file in the lake.
    let rows = work.path().join("rows.jsonl");
    std::fs::write(&rows, "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n").unwrap();
    let put = azurite.call("PUT", "/lake/in/rows.jsonl", token, Some(&rows));
    assert!(put.ends_with("201"), "{put}");
    let topic = fresh_topic("entra-import");
    ensure_topic(&broker(), &topic, 1).unwrap();
    let import = sluice(
        &azurite,
        &tokens,
        &["import", "--from", "az://lake/in", "--topic", &topic],
    );
    assert!(import.status.success(), "{}", text(&import));
    assert_eq!(read_all(&broker(), &topic).len(), 3);
    runs.push(import);

    // The export, into the lake (connections.json names no key).
    let topics = work.path().join("topics.json");
    std::fs::write(
        &topics,
        format!(r#"[{{"topic": "{topic}", "group_id": "{topic}-export", "reset_offsets": true}}]"#),
    )
    .unwrap();
    let connections = work.path().join("connections.json");
    std::fs::write(
        &connections,
        serde_json::json!({
            "bootstrap_servers": broker().bootstrap_servers,
            "azure_storage_account_name": ACCOUNT,
            "azure_storage_endpoint": azurite.endpoint(),
            "storage_url": "az://lake/export",
        })
        .to_string(),
    )
    .unwrap();
    let export = sluice(
        &azurite,
        &tokens,
        &[
            "export",
            "--topics",
            topics.to_str().unwrap(),
            "--connections",
            connections.to_str().unwrap(),
        ],
    );
    assert!(export.status.success(), "{}", text(&export));
    let listing = azurite.call(
        "GET",
        "/lake?restype=container&comp=list&prefix=export/",
        token,
        None,
    );
    assert!(
        listing.contains(&format!("{topic}+0+0-2.parquet")),
        "{listing}"
    );
    runs.push(export);

    // Every token was asked for storage's resource, with the header.
    let issued = tokens.issued();
    assert!(
        issued.len() >= 5,
        "one sign-in per run at least: {issued:?}"
    );
    assert!(
        issued
            .iter()
            .all(|i| i.resource == "https://storage.azure.com"),
        "{issued:?}"
    );
    assert!(tokens.refused().is_empty(), "{:?}", tokens.refused());
    // Each run says which credential it used, and shows no secret.
    for run in &runs {
        let log = text(run);
        assert!(log.contains("managed identity (App Service)"), "{log}");
        assert!(
            !log.contains(&tokens.header),
            "the identity header was logged:\n{log}"
        );
        for secret in &issued {
            assert!(!log.contains(&secret.token), "a token was logged:\n{log}");
        }
    }

    // Azurite does check the tokens: one for another audience is refused.
    tokens.set_audience(Some("https://vault.azure.net"));
    let refused = sluice(
        &azurite,
        &tokens,
        &["transforms", "list", "--registry", registry],
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("403"), "{}", text(&refused));
}
