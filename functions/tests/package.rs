//! `sluice package` as a deployment uses it: the zip is unpacked and its
//! layout checked against what the Azure Functions host (host.json at the
//! root, one folder per function, the executable host.json names) and AWS
//! Lambda (`bootstrap` at the root, executable) expect. The packaged binary
//! is this build's own `sluice`, run again after unpacking.
//!
//! Each test works on its own copy of the binary: the build folder may be
//! shared, and another build replacing `sluice` mid-test would change the
//! bytes under comparison. The copy is stripped of its debug information
//! (binutils' `strip`), which is most of a debug build's 650 MiB: the
//! package treats the binary as opaque bytes, and compressing a tenth of
//! them keeps the test to seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// The function app as checked in.
fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("app")
}

/// One file of an unpacked zip.
struct Unpacked {
    mode: u32,
    bytes: Vec<u8>,
}

/// This build's `sluice`, copied into `dir` and stripped.
fn own_sluice(dir: &Path) -> PathBuf {
    let copy = dir.join("sluice-under-test");
    std::fs::copy(SLUICE, &copy).expect("copy the sluice binary");
    let strip = Command::new("strip")
        .arg("--strip-debug")
        .arg(&copy)
        .status()
        .expect("run strip (binutils)");
    assert!(strip.success(), "strip failed");
    copy
}

fn package(args: &[&str], out: &Path) -> Output {
    package_with(Path::new(SLUICE), args, out)
}

fn package_with(sluice: &Path, args: &[&str], out: &Path) -> Output {
    let mut command = Command::new(sluice);
    command.arg("package").args(args).arg("--out").arg(out);
    output(&mut command)
}

/// Runs `command`. A binary this test just wrote can be "busy" for a
/// moment: a process another test thread forks meanwhile holds a copy of
/// the write handle until it execs. Trying again then is enough.
fn output(command: &mut Command) -> Output {
    for _ in 0..50 {
        match command.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result.expect("run the command"),
        }
    }
    panic!("{command:?} stayed busy");
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "sluice package failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every entry of the zip: files with their unix mode and bytes; folders
/// (names ending in `/`) with no bytes.
fn unzip(path: &Path) -> BTreeMap<String, Unpacked> {
    let file = std::fs::File::open(path).expect("the zip exists");
    let mut zip = zip::ZipArchive::new(file).expect("a valid zip");
    let mut entries = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let name = entry.name().expect("a UTF-8 entry name").into_owned();
        assert!(
            !name.starts_with('/') && !name.split('/').any(|part| part == ".."),
            "entry `{name}` escapes the app folder"
        );
        let mut bytes = Vec::new();
        std::io::copy(&mut entry, &mut bytes).unwrap();
        let mode = entry
            .unix_mode()
            .unwrap_or_else(|| panic!("entry `{name}` has no unix mode"));
        entries.insert(name, Unpacked { mode, bytes });
    }
    entries
}

/// A topics.json, connections.json, pipeline file and a transforms folder
/// the package accepts, in `dir`.
struct Inputs {
    topics: PathBuf,
    connections: PathBuf,
    pipeline: PathBuf,
    transforms: PathBuf,
}

fn inputs(dir: &Path) -> Inputs {
    let topics = dir.join("prod-topics.json");
    std::fs::write(
        &topics,
        r#"[{"topic": "expedia", "group_id": "export", "reset_offsets": true}]"#,
    )
    .unwrap();
    let connections = dir.join("prod-connections.json");
    std::fs::write(
        &connections,
        r#"{"bootstrap_servers": "ns.servicebus.windows.net:9093"}"#,
    )
    .unwrap();
    let pipeline = dir.join("stays.json");
    std::fs::write(
        &pipeline,
        r#"{"name": "stays", "inputs": ["expedia"], "outputs": ["expedia_ext"],
            "transform": "stay-category", "dead_letter": "expedia_ext.dlq"}"#,
    )
    .unwrap();
    let transforms = dir.join("transforms");
    std::fs::create_dir(&transforms).unwrap();
    // The component preamble: magic, version, layer 1 (a core module has 0).
    std::fs::write(
        transforms.join("stay_category.wasm"),
        b"\0asm\x0d\x00\x01\x00rest of the component",
    )
    .unwrap();
    std::fs::write(transforms.join("README.txt"), "not a transform").unwrap();
    Inputs {
        topics,
        connections,
        pipeline,
        transforms,
    }
}

fn all_inputs(inputs: &Inputs) -> Vec<String> {
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    vec![
        "--topics".into(),
        path(&inputs.topics),
        "--connections".into(),
        path(&inputs.connections),
        "--pipeline".into(),
        path(&inputs.pipeline),
        "--transforms".into(),
        path(&inputs.transforms),
    ]
}

/// Unpacks `name` from the zip into `dir` with its mode, runs it with
/// `--version`, and returns what it printed: the execute bit and the bytes
/// survived packing.
fn run_unpacked(entry: &Unpacked, dir: &Path, name: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, &entry.bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode & 0o7777)).unwrap();
    let ran = output(Command::new(&path).arg("--version"));
    assert!(ran.status.success(), "the unpacked {name} failed");
    String::from_utf8_lossy(&ran.stdout).into_owned()
}

#[test]
fn azure_package_is_a_custom_handler_app() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let out = dir.path().join("dist");
    let sluice = own_sluice(dir.path());
    let args = all_inputs(&inputs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let binary = ["--target", "azure", "--binary", sluice.to_str().unwrap()];
    let output = package(&[&binary[..], &args[..]].concat(), &out);
    assert_ok(&output);
    let zip = out.join("sluice-azure.zip");
    let entries = unzip(&zip);

    // host.json at the root, as checked in, naming the executable.
    let host = &entries["host.json"];
    assert_eq!(
        host.bytes,
        std::fs::read(app_dir().join("host.json")).unwrap()
    );
    let host: Value = serde_json::from_slice(&host.bytes).unwrap();
    let executable = host["customHandler"]["description"]["defaultExecutablePath"]
        .as_str()
        .expect("host.json names the executable");
    let binary = &entries[executable];
    // (Not assert_eq!: a failure would print hundreds of megabytes.)
    assert!(
        binary.bytes == std::fs::read(&sluice).unwrap(),
        "the packaged binary differs"
    );
    assert_eq!(
        binary.mode & 0o777,
        0o755,
        "the executable keeps its execute bit"
    );
    assert_eq!(binary.mode & 0o170000, 0o100000, "a regular file");
    let version = run_unpacked(binary, dir.path(), "unpacked-sluice");
    assert!(version.starts_with("sluice "), "{version}");

    // One folder per function of functions/app, each function.json as
    // checked in: a new function there cannot be forgotten by the package.
    let mut functions = Vec::new();
    for item in std::fs::read_dir(app_dir()).unwrap() {
        let folder = item.unwrap().path();
        let json = folder.join("function.json");
        if json.is_file() {
            let name = folder.file_name().unwrap().to_string_lossy().into_owned();
            let packaged = &entries[&format!("{name}/function.json")];
            assert_eq!(packaged.bytes, std::fs::read(&json).unwrap(), "{name}");
            assert_eq!(packaged.mode & 0o777, 0o644);
            assert!(
                entries.contains_key(&format!("{name}/")),
                "folder entry {name}/"
            );
            functions.push(name);
        }
    }
    functions.sort();
    assert_eq!(functions, ["Api", "Enrich", "Export"]);
    let binding = |function: &str| -> Value {
        let json: Value =
            serde_json::from_slice(&entries[&format!("{function}/function.json")].bytes).unwrap();
        json
    };
    assert_eq!(binding("Export")["bindings"][0]["type"], "timerTrigger");
    assert_eq!(binding("Api")["bindings"][0]["type"], "httpTrigger");
    let enrich = binding("Enrich");
    assert_eq!(enrich["bindings"][0]["type"], "kafkaTrigger");
    // The Kafka trigger's retry policy (function level, as Microsoft
    // documents it for Kafka), with intervals in HH:mm:ss.
    let retry = &enrich["retry"];
    assert_eq!(retry["strategy"], "exponentialBackoff");
    assert!(
        retry["maxRetryCount"]
            .as_i64()
            .is_some_and(|n| n == -1 || n > 0)
    );
    for interval in ["minimumInterval", "maximumInterval"] {
        let text = retry[interval].as_str().unwrap();
        assert!(
            text.len() == 8 && text.as_bytes()[2] == b':' && text.as_bytes()[5] == b':',
            "{interval} `{text}` is HH:mm:ss"
        );
    }

    // The user's files under the names the settings point at.
    assert_eq!(
        entries["topics.json"].bytes,
        std::fs::read(&inputs.topics).unwrap()
    );
    assert_eq!(
        entries["connections.json"].bytes,
        std::fs::read(&inputs.connections).unwrap()
    );
    assert_eq!(
        entries["pipeline.json"].bytes,
        std::fs::read(&inputs.pipeline).unwrap()
    );
    assert!(entries.contains_key("transforms/stay_category.wasm"));

    let files: Vec<&str> = entries
        .keys()
        .map(String::as_str)
        .filter(|n| !n.ends_with('/'))
        .collect();
    assert_eq!(
        files,
        [
            "Api/function.json",
            "Enrich/function.json",
            "Export/function.json",
            "connections.json",
            "host.json",
            "pipeline.json",
            executable,
            "topics.json",
            "transforms/stay_category.wasm",
        ],
        "nothing else (not the transforms folder's README)"
    );
}

#[test]
fn the_same_inputs_give_the_same_zip() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let out = dir.path().join("dist");
    let elf = fake_elf(dir.path(), 0x3e);
    let args = all_inputs(&inputs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let binary = ["--target", "azure", "--binary", elf.to_str().unwrap()];
    let zip = out.join("sluice-azure.zip");
    assert_ok(&package(&[&binary[..], &args[..]].concat(), &out));
    let first = std::fs::read(&zip).unwrap();
    // A second run later, after the inputs' modification times changed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&inputs.topics, std::fs::read(&inputs.topics).unwrap()).unwrap();
    assert_ok(&package(&[&binary[..], &args[..]].concat(), &out));
    assert!(
        std::fs::read(&zip).unwrap() == first,
        "a second package differs"
    );
}

#[test]
fn azure_package_leaves_out_functions_without_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let out = dir.path().join("dist");
    let topics = inputs.topics.to_string_lossy().into_owned();
    let elf = fake_elf(dir.path(), 0x3e);
    let output = package(
        &[
            "--target",
            "azure",
            "--binary",
            elf.to_str().unwrap(),
            "--topics",
            &topics,
        ],
        &out,
    );
    assert_ok(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("function Enrich left out: it needs pipeline.json (--pipeline)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("function Export left out: it needs connections.json (--connections)"),
        "{stdout}"
    );
    let entries = unzip(&out.join("sluice-azure.zip"));
    assert!(entries.contains_key("Api/function.json"));
    assert!(entries.contains_key("host.json"));
    assert!(entries.contains_key("topics.json"));
    assert!(
        !entries
            .keys()
            .any(|n| n.starts_with("Enrich") || n.starts_with("Export"))
    );
}

#[test]
fn lambda_package_is_a_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let out = dir.path().join("dist");
    let topics = inputs.topics.to_string_lossy().into_owned();
    let connections = inputs.connections.to_string_lossy().into_owned();
    // Without --binary: the running sluice packages itself.
    let sluice = own_sluice(dir.path());
    let output = package_with(
        &sluice,
        &[
            "--target",
            "lambda",
            "--topics",
            &topics,
            "--connections",
            &connections,
        ],
        &out,
    );
    assert_ok(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("binary: x86_64"), "{stdout}");
    let entries = unzip(&out.join("sluice-lambda.zip"));
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(names, ["bootstrap", "connections.json", "topics.json"]);
    let bootstrap = &entries["bootstrap"];
    assert!(
        bootstrap.bytes == std::fs::read(&sluice).unwrap(),
        "bootstrap is not the packaging binary"
    );
    assert_eq!(bootstrap.mode & 0o777, 0o755);
    // Lambda starts it with no arguments; here `--version` shows it runs.
    let version = run_unpacked(bootstrap, dir.path(), "bootstrap");
    assert!(version.starts_with("sluice "), "{version}");
}

/// A fake executable: the ELF header fields the package reads (64-bit,
/// little-endian, the machine at byte 18), without the rest.
fn fake_elf(dir: &Path, machine: u16) -> PathBuf {
    let mut bytes = vec![0u8; 64];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2;
    bytes[5] = 1;
    bytes[18..20].copy_from_slice(&machine.to_le_bytes());
    let path = dir.join(format!("elf-{machine:x}"));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn bad_inputs_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let out = dir.path().join("dist");
    let x86 = fake_elf(dir.path(), 0x3e);
    let x86 = x86.to_str().unwrap();
    let refused = |args: &[&str], expected: &[&str]| {
        let output = package(args, &out);
        assert!(!output.status.success(), "{args:?} was accepted");
        let stderr = stderr(&output);
        for part in expected {
            assert!(
                stderr.contains(part),
                "{args:?}: `{part}` not in:\n{stderr}"
            );
        }
        assert!(
            !out.join("sluice-azure.zip").exists() && !out.join("sluice-lambda.zip").exists(),
            "{args:?} left a package behind"
        );
    };

    let missing = dir.path().join("nowhere/topics.json");
    refused(
        &[
            "--target",
            "azure",
            "--binary",
            x86,
            "--topics",
            missing.to_str().unwrap(),
        ],
        &["nowhere/topics.json"],
    );

    let not_json = dir.path().join("broken-connections.json");
    std::fs::write(&not_json, "{\"bootstrap_servers\": ").unwrap();
    refused(
        &[
            "--target",
            "azure",
            "--binary",
            x86,
            "--connections",
            not_json.to_str().unwrap(),
        ],
        &["broken-connections.json", "not valid JSON"],
    );

    let bad_topics = dir.path().join("bad-topics.json");
    std::fs::write(
        &bad_topics,
        r#"[{"topic": "t", "group_id": "g", "num_messages": -1}]"#,
    )
    .unwrap();
    refused(
        &[
            "--target",
            "lambda",
            "--binary",
            x86,
            "--topics",
            bad_topics.to_str().unwrap(),
        ],
        &["bad-topics.json", "num_messages"],
    );

    let bad_pipeline = dir.path().join("bad-pipeline.json");
    std::fs::write(&bad_pipeline, r#"{"name": "p", "inputs": ["a"]}"#).unwrap();
    refused(
        &[
            "--target",
            "azure",
            "--binary",
            x86,
            "--pipeline",
            bad_pipeline.to_str().unwrap(),
        ],
        &["bad-pipeline.json"],
    );

    // Lambda has no Kafka trigger: a pipeline there is a mistake, said so.
    refused(
        &[
            "--target",
            "lambda",
            "--binary",
            x86,
            "--pipeline",
            inputs.pipeline.to_str().unwrap(),
        ],
        &["stays.json", "only on Azure Functions"],
    );

    let core_module = dir.path().join("modules");
    std::fs::create_dir(&core_module).unwrap();
    std::fs::write(core_module.join("core.wasm"), b"\0asm\x01\x00\x00\x00").unwrap();
    refused(
        &[
            "--target",
            "azure",
            "--binary",
            x86,
            "--transforms",
            core_module.to_str().unwrap(),
        ],
        &["core.wasm", "not a WebAssembly component"],
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(
        &[
            "--target",
            "azure",
            "--binary",
            x86,
            "--transforms",
            empty.to_str().unwrap(),
        ],
        &["empty", "no .wasm files"],
    );

    let script = dir.path().join("start.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sluice serve\n").unwrap();
    refused(
        &["--target", "lambda", "--binary", script.to_str().unwrap()],
        &["start.sh", "not a 64-bit Linux executable"],
    );
    let arm = fake_elf(dir.path(), 0xb7);
    refused(
        &["--target", "azure", "--binary", arm.to_str().unwrap()],
        &["elf-b7", "arm64", "x86-64"],
    );
    // ...which Lambda takes, saying which architecture to deploy.
    let output = package(
        &["--target", "lambda", "--binary", arm.to_str().unwrap()],
        &out,
    );
    assert_ok(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("binary: arm64"));
}
