//! `sluice serve` as a process, for the tests that drive the HTTP app from
//! outside: started on a free port with the settings a test gives (and
//! none of the caller's environment that would change what is tested),
//! logging to a file in its own folder, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{self, Response, free_port};

/// Settings from the environment that would change what is tested.
pub const CLEARED: [&str; 13] = [
    "SLUICE_ADMIN_KEY",
    "SLUICE_API_KEY",
    "SLUICE_METRICS_KEY",
    "SLUICE_AZURE_KEY",
    "SLUICE_AZURE_ACCOUNT",
    "SLUICE_AZURE_ENDPOINT",
    "SLUICE_REGISTRY",
    "SLUICE_NO_SHARED_ARTIFACTS",
    "SLUICE_PIPELINE",
    "SLUICE_OAUTH_ISSUER",
    "FUNCTIONS_CUSTOMHANDLER_PORT",
    "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
    "AWS_LAMBDA_RUNTIME_API",
];

pub struct App {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl App {
    /// `binary serve --port P args...` with `env`, once it answers `GET /`
    /// (or fails the test after 60 s, with its log).
    pub fn start(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> App {
        let dir = tempfile::tempdir().expect("a folder");
        let port = free_port();
        let mut command = Command::new(binary);
        for var in CLEARED {
            command.env_remove(var);
        }
        command
            .args(["serve", "--port", &port.to_string()])
            .args(args)
            .envs(env.iter().copied())
            .env("SLUICE_CACHE_DIR", dir.path().join("cache"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).expect("a log file"));
        let child = command.spawn().expect("start sluice serve");
        let app = App { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http::get(port, "/", &[]).is_none() {
            assert!(
                Instant::now() < deadline,
                "sluice serve did not answer:\n{}",
                app.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        app
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// `GET path` with `x-functions-key: key`.
    pub fn get(&self, path: &str, key: &str) -> Response {
        http::request(self.port, "GET", path, &[("x-functions-key", key)], &[])
            .unwrap_or_else(|| panic!("sluice serve answers GET {path}:\n{}", self.log()))
    }

    /// The folder the app was started in.
    pub fn folder(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
