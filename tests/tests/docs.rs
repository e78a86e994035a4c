//! The documents keep their promises checkable: every test a document
//! cites (`file.rs::test_name`, or a module path ending in a test's name)
//! must exist, so renaming or deleting a test that backs a promise fails
//! here until the document says what backs it now.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file under `dir` with one of `extensions`, skipping build output
/// and hidden folders.
fn files(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    stack.push(path);
                }
            } else if extensions
                .iter()
                .any(|e| path.extension().is_some_and(|x| x == *e))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The documents whose citations are checked: the front door, the map and
/// the book.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut docs = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    docs.extend(files(&root.join("docs"), &["md"]));
    docs.retain(|d| d.exists());
    docs
}

/// Code spans (`…`) of a Markdown text.
fn code_spans(text: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        // Fenced blocks and double backticks are not citations.
        if after.starts_with('`') {
            rest = after.trim_start_matches('`');
            continue;
        }
        let Some(end) = after.find('`') else { break };
        spans.push(&after[..end]);
        rest = &after[end + 1..];
    }
    spans
}

/// A citation of a test: `path/file.rs::name` (the file must exist and
/// define `fn name`) or `module::path::name` with a `tests` segment (some
/// source file must define `fn name`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Citation {
    InFile {
        file: String,
        name: String,
    },
    InModule {
        path: String,
        name: String,
    },
    /// A test's name alone (`a_re_export_of_a_grown_topic_replaces_...`):
    /// a sentence of at least six words, as test names here are.
    Bare {
        name: String,
    },
}

fn citation(span: &str) -> Option<Citation> {
    let span = span.trim();
    let is_ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if let Some((file, name)) = span.rsplit_once(".rs::") {
        return is_ident(name).then(|| Citation::InFile {
            file: format!("{file}.rs"),
            name: name.to_owned(),
        });
    }
    if is_ident(span) && span.matches('_').count() >= 5 && !span.starts_with("sluice_") {
        return Some(Citation::Bare {
            name: span.to_owned(),
        });
    }
    let parts: Vec<&str> = span.split("::").collect();
    let name = parts.last()?;
    (parts.len() >= 3 && parts.contains(&"tests") && parts.iter().all(|p| is_ident(p))).then(|| {
        Citation::InModule {
            path: span.to_owned(),
            name: (*name).to_owned(),
        }
    })
}

/// Whether `text` defines a function `name` (a test, or a helper the
/// citation names).
fn defines(text: &str, name: &str) -> bool {
    text.match_indices(&format!("fn {name}")).any(|(at, m)| {
        text[at + m.len()..]
            .chars()
            .next()
            .is_some_and(|c| c == '(' || c == '<')
    })
}

#[test]
fn every_test_a_document_cites_exists() {
    let root = root();
    let sources: BTreeMap<PathBuf, String> = files(&root, &["rs"])
        .into_iter()
        .filter_map(|p| Some((p.clone(), std::fs::read_to_string(&p).ok()?)))
        .collect();
    let mut missing = BTreeSet::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for span in code_spans(&text) {
            let Some(cited) = citation(span) else {
                continue;
            };
            checked += 1;
            let found = match &cited {
                Citation::InFile { file, name } => sources.iter().any(|(path, text)| {
                    path.to_string_lossy().ends_with(&format!("/{file}")) && defines(text, name)
                }),
                Citation::InModule { name, .. } | Citation::Bare { name } => {
                    sources.values().any(|text| defines(text, name))
                }
            };
            if !found {
                let shown = doc.strip_prefix(&root).unwrap_or(&doc).display();
                missing.insert(format!("{shown}: `{span}`"));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} citations found: is the reader broken?"
    );
    assert!(
        missing.is_empty(),
        "documents cite tests that do not exist (renamed or removed?):\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_citation_reader_reads_what_the_documents_write() {
    let spans = code_spans("a `x.rs::a_test` b ``skip`` `config::topics::tests::errors` `plain`");
    assert_eq!(
        spans.iter().filter_map(|s| citation(s)).collect::<Vec<_>>(),
        [
            Citation::InFile {
                file: "x.rs".into(),
                name: "a_test".into()
            },
            Citation::InModule {
                path: "config::topics::tests::errors".into(),
                name: "errors".into()
            },
        ]
    );
    assert!(defines("fn a_test() {}", "a_test"));
    assert!(!defines("fn a_test_more() {}", "a_test"));
}

/// One field of a configuration struct, as its source says it.
#[derive(Debug, PartialEq)]
struct FieldDoc {
    name: String,
    ty: String,
    required: bool,
    doc: String,
}

/// The fields of `pub struct name` in `source`, each with its doc comment
/// and whether serde needs it in the file (no `default`, not an `Option`).
fn struct_fields(source: &str, name: &str) -> Vec<FieldDoc> {
    let start = source
        .find(&format!("pub struct {name} {{"))
        .unwrap_or_else(|| panic!("no `pub struct {name}` in its source"));
    let mut fields = Vec::new();
    let (mut doc, mut defaulted, mut renamed) = (Vec::new(), false, None);
    for line in source[start..].lines().skip(1) {
        let line = line.trim();
        if line == "}" {
            break;
        }
        if let Some(text) = line.strip_prefix("///") {
            doc.push(text.trim().to_owned());
        } else if line.starts_with("#[serde(") {
            defaulted |= line.contains("default");
            if let Some(rest) = line.split("rename = \"").nth(1) {
                renamed = rest.split('"').next().map(str::to_owned);
            }
        } else if let Some(rest) = line.strip_prefix("pub ") {
            let Some((field, ty)) = rest.split_once(':') else {
                continue;
            };
            let ty = ty.trim().trim_end_matches(',').to_owned();
            let optional = ty.starts_with("Option<");
            fields.push(FieldDoc {
                name: renamed.take().unwrap_or_else(|| field.trim().to_owned()),
                required: !defaulted && !optional,
                ty: ty
                    .strip_prefix("Option<")
                    .and_then(|t| t.strip_suffix('>'))
                    .unwrap_or(&ty)
                    .to_owned(),
                doc: doc.join(" "),
            });
            doc.clear();
            defaulted = false;
        }
    }
    fields
}

/// A field's type as a JSON file holds it.
fn json_type(rust: &str) -> String {
    match rust {
        "String" | "PathBuf" | "Secret" => "string".into(),
        "u64" | "usize" | "i64" | "i32" | "u32" => "number".into(),
        "bool" => "true or false".into(),
        "Vec<String>" => "list of strings".into(),
        "BTreeMap<String, String>" => "object of strings".into(),
        "BTreeMap<String, i64>" => "object of numbers by partition".into(),
        other => other.into(),
    }
}

/// The Markdown table of a struct's fields.
fn field_table(fields: &[FieldDoc]) -> String {
    let mut table = String::from("| field | type | required | what it is |\n|---|---|---|---|\n");
    for f in fields {
        table.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            f.name,
            json_type(&f.ty).replace('|', "\\|"),
            if f.required { "yes" } else { "no" },
            f.doc.replace('|', "\\|")
        ));
    }
    table
}

/// The reference pages' tables, generated from the structs that read the
/// files (their doc comments are the documentation): `(page, [(source,
/// struct)])`.
const REFERENCE: [(&str, &[(&str, &str)]); 3] = [
    (
        "docs/src/reference/topics-json.md",
        &[("host/src/config/topics.rs", "TopicEntry")],
    ),
    (
        "docs/src/reference/connections-json.md",
        &[
            ("host/src/config/connections.rs", "Connections"),
            ("host/src/config/connections.rs", "Sasl"),
            ("host/src/config/connections.rs", "SslFiles"),
            ("host/src/identity/settings.rs", "AzureIdentity"),
        ],
    ),
    (
        "docs/src/reference/pipeline-json.md",
        &[
            ("host/src/enrich/definition.rs", "PipelineDefinition"),
            ("host/src/enrich/definition.rs", "JoinSpec"),
            ("host/src/enrich/definition.rs", "LimitSpec"),
        ],
    ),
];

/// Every field of the configuration files has a doc comment, and the
/// reference pages hold the tables those comments make, between
/// `<!-- fields: Struct -->` and `<!-- end -->`. With
/// `SLUICE_UPDATE_DOCS=1` the pages are rewritten instead of checked.
#[test]
fn the_reference_pages_are_the_config_structs_doc_comments() {
    let root = root();
    let update = std::env::var_os("SLUICE_UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for (page, structs) in REFERENCE {
        let path = root.join(page);
        let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{page}: {e}"));
        for (source, name) in structs {
            let code = std::fs::read_to_string(root.join(source)).unwrap();
            let fields = struct_fields(&code, name);
            assert!(!fields.is_empty(), "{source}: no fields read from {name}");
            let undocumented: Vec<&str> = fields
                .iter()
                .filter(|f| f.doc.is_empty())
                .map(|f| f.name.as_str())
                .collect();
            assert!(
                undocumented.is_empty(),
                "{source}: fields of {name} without a doc comment: {undocumented:?}"
            );
            let open = format!("<!-- fields: {name} -->\n");
            let close = "<!-- end -->";
            let start = text
                .find(&open)
                .unwrap_or_else(|| panic!("{page} has no `{}` marker", open.trim()))
                + open.len();
            let end = start
                + text[start..]
                    .find(close)
                    .unwrap_or_else(|| panic!("{page}: `{}` is not closed", open.trim()));
            let table = field_table(&fields);
            if text[start..end] != table {
                stale.push(format!("{page} ({name})"));
                text.replace_range(start..end, &table);
            }
        }
        if update {
            std::fs::write(&path, &text).unwrap();
        }
    }
    assert!(
        update || stale.is_empty(),
        "reference tables differ from the structs' doc comments: {stale:?}; \
         rewrite them with SLUICE_UPDATE_DOCS=1 cargo test -p sluice-tests --test integration docs::"
    );
}

#[test]
fn a_struct_is_read_field_by_field_with_its_docs() {
    let source = "pub struct S {\n    /// The name.\n    pub name: String,\n    /// Maybe.\n    \
                  #[serde(default)]\n    pub count: u64,\n    /// Or not.\n    pub extra: Option<String>,\n}\n";
    let fields = struct_fields(source, "S");
    assert_eq!(
        fields
            .iter()
            .map(|f| (f.name.as_str(), f.ty.as_str(), f.required, f.doc.as_str()))
            .collect::<Vec<_>>(),
        [
            ("name", "String", true, "The name."),
            ("count", "u64", false, "Maybe."),
            ("extra", "String", false, "Or not."),
        ]
    );
}

/// The README is the front door, read in ten minutes: what Sluice replaces,
/// the two commands, an example per job and links into the book (`docs/`),
/// where the manual lives. A section that grows past that belongs in a
/// chapter.
#[test]
fn the_readme_stays_a_ten_minute_read() {
    const MAX_LINES: usize = 200;
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= MAX_LINES,
        "README.md has {lines} lines, past {MAX_LINES}: move the detail into a chapter of docs/src/"
    );
}
