//! A pipeline definition: which topics in and out, which transform, whether
//! to join, where failures go. The JSON document the registry stores and
//! `sluice enrich --pipeline` reads; every error names the field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runtime::Limits;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDefinition {
    /// The pipeline's name (`a-z0-9_-`): how the registry and the
    /// topology page know it, and the default consumer group's.
    pub name: String,
    /// Topics read; with a join, one record per topic makes one input.
    pub inputs: Vec<String>,
    /// Topics a transform may emit to; a record naming no topic goes to all.
    pub outputs: Vec<String>,
    /// The transform, by name (its active version, followed as it
    /// changes) or pinned (`{"name", "version"}`).
    pub transform: TransformRef,
    /// Joins the inputs' records by an id before the transform, one
    /// record per input making one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinSpec>,
    /// Where records that cannot be processed go, with the reason in headers.
    pub dead_letter: String,
    /// What the input values are: `json` (checked: a value that is not
    /// JSON is dead-lettered) or `raw` (passed as they are).
    #[serde(default)]
    pub value_format: EnrichFormat,
    /// Read-only key/value pairs the guest sees through `host.metadata`
    /// (the workers' `metadatas`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// What the transform may take: memory, time per call, time per
    /// batch.
    #[serde(default)]
    pub limits: LimitSpec,
    /// Consumer group of the workers; `sluice-<name>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Where a group with no committed offset starts.
    #[serde(default)]
    pub start: StartFrom,
    /// Records handed to the guest per call, at most.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

pub use crate::names::TransformRef;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    /// Dotted path of the id in each record's JSON value, such as `id` or
    /// `booking.id`.
    pub key: String,
    /// How far apart in event time (the records' timestamps) the members of
    /// one id may be: an id whose first record is older than this, as the
    /// stream's time goes, is given up.
    pub timeout_ms: u64,
    /// How much later than the stream's time a member may arrive and still
    /// join (records of several partitions interleave out of order).
    #[serde(default = "default_grace_ms")]
    pub grace_ms: u64,
    /// What happens to an id given up: `drop` (the default),
    /// `dead_letter`, or `emit_partial` (transformed from what arrived).
    #[serde(default)]
    pub on_timeout: OnTimeout,
    /// Ids waiting at once, at most; past it the oldest is timed out early.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// Bytes the waiting records may hold together (keys, values, headers
    /// and the index of their fields), at most; 256 MiB unless set. Past
    /// it the id that waited longest is given up early, as a timeout is
    /// (`on_timeout`: dropped, dead-lettered or emitted partial, and
    /// committed only then), with an error in the log; a record larger than
    /// this on its own is dead-lettered (`sluice.error.kind: join-limit`).
    #[serde(default = "default_max_pending_bytes")]
    pub max_pending_bytes: usize,
    /// Fields one record may have (top-level ones and those of `content`,
    /// a repeated name counted each time), at most; 10,000 unless set. The
    /// merge runs on the host, outside the transform's deadline: a record
    /// with more is dead-lettered (`sluice.error.kind: join-limit`, the
    /// reason naming the limit and the record).
    #[serde(default = "default_max_fields")]
    pub max_fields: usize,
}

impl JoinSpec {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms)
    }
}

/// What happens to the records of an id that did not arrive from every input
/// in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Discard them, as the Python ETL workers do.
    #[default]
    Drop,
    /// Merge what arrived and run the transform on it.
    EmitPartial,
    /// Send each one to the dead-letter topic.
    DeadLetter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrichFormat {
    /// Values must be JSON; one that is not is dead-lettered before the guest
    /// sees it.
    #[default]
    Json,
    /// Values are handed over as they are.
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    /// Largest memory a guest instance may grow to, in MiB (default 256).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: usize,
    /// Longest one guest call may run, in ms (default 10,000); a record
    /// that runs past it alone is dead-lettered (kind `deadline`).
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Longest one batch may spend in the transform, all its calls
    /// together, in ms: a record that runs past its deadline costs a whole
    /// deadline, and a batch with many of them would otherwise run for as
    /// many deadlines, past `max.poll.interval.ms` (the worker is put out of
    /// its group, again and again) or the function's timeout. Records the
    /// budget leaves untried wait for the worker's next step (uncommitted);
    /// behind the Kafka trigger they are dead-lettered (kind `budget`). A
    /// batch takes at most the budget plus one deadline. At least
    /// `deadline_ms`; by default 60,000 or `deadline_ms` when longer: with
    /// the default deadline a batch ends within 70 s, well inside
    /// `max.poll.interval.ms` (300 s) and the Functions timeout (5 min on
    /// the Consumption plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_ms: Option<u64>,
}

impl Default for LimitSpec {
    fn default() -> Self {
        LimitSpec {
            memory_mb: default_memory_mb(),
            deadline_ms: default_deadline_ms(),
            budget_ms: None,
        }
    }
}

impl LimitSpec {
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory_mb << 20,
            deadline: Duration::from_millis(self.deadline_ms),
        }
    }

    /// The time budget of one batch (see `budget_ms`).
    pub fn budget(&self) -> Duration {
        Duration::from_millis(
            self.budget_ms
                .unwrap_or(DEFAULT_BUDGET_MS.max(self.deadline_ms)),
        )
    }
}

/// The default `limits.budget_ms`: six default deadlines, a fifth of
/// Kafka's default `max.poll.interval.ms`.
const DEFAULT_BUDGET_MS: u64 = 60_000;

fn default_batch_size() -> usize {
    500
}

fn default_grace_ms() -> u64 {
    1_000
}

fn default_max_pending() -> usize {
    100_000
}

fn default_max_pending_bytes() -> usize {
    256 << 20
}

fn default_max_fields() -> usize {
    10_000
}

fn default_memory_mb() -> usize {
    Limits::default().memory_bytes >> 20
}

fn default_deadline_ms() -> u64 {
    Limits::default().deadline.as_millis() as u64
}

/// A definition that cannot be used; `field` is the JSON path of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}pipeline definition{}: {reason}", entry_of(.entry), at(.pipeline, .field))]
pub struct DefinitionError {
    /// Which entry of a list, when the definition was one of several.
    pub entry: Option<usize>,
    pub pipeline: Option<String>,
    pub field: String,
    pub reason: String,
}

fn entry_of(index: &Option<usize>) -> String {
    index.map(|i| format!("entry [{i}]: ")).unwrap_or_default()
}

fn at(pipeline: &Option<String>, field: &str) -> String {
    let name = pipeline
        .as_deref()
        .map(|n| format!(" `{n}`"))
        .unwrap_or_default();
    if field.is_empty() {
        name
    } else {
        format!("{name}, field `{field}`")
    }
}

/// A pipeline file that cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionFileError {
    #[error("reading the pipeline file {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Invalid {
        path: std::path::PathBuf,
        source: DefinitionError,
    },
}

impl PipelineDefinition {
    /// Parses and checks a definition.
    pub fn from_json(text: &str) -> Result<Self, DefinitionError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| DefinitionError {
            entry: None,
            pipeline: None,
            field: String::new(),
            reason: format!("not valid JSON: {e}"),
        })?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &serde_json::Value) -> Result<Self, DefinitionError> {
        let pipeline = value
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_owned);
        let definition: PipelineDefinition =
            serde_path_to_error::deserialize(value).map_err(|e| DefinitionError {
                entry: None,
                pipeline: pipeline.clone(),
                field: match e.path().to_string() {
                    root if root == "." => String::new(),
                    path => path,
                },
                reason: e.inner().to_string(),
            })?;
        definition.validate()?;
        Ok(definition)
    }

    /// One definition or a list of them (what `sluice pipelines apply` and
    /// `POST /api/pipelines` take), every one checked; an error in a list
    /// names the entry.
    pub fn one_or_many(value: &serde_json::Value) -> Result<Vec<Self>, DefinitionError> {
        match value {
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    Self::from_value(item).map_err(|mut e| {
                        e.entry = Some(i);
                        e
                    })
                })
                .collect(),
            single => Ok(vec![Self::from_value(single)?]),
        }
    }

    /// Reads one definition from a file.
    pub fn read(path: &std::path::Path) -> Result<Self, DefinitionFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| DefinitionFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text).map_err(|source| DefinitionFileError::Invalid {
            path: path.to_owned(),
            source,
        })
    }

    /// Whether the pipeline can run behind a Kafka trigger (the Azure
    /// Functions Kafka extension, `POST /Enrich`). A join cannot: its records
    /// wait for their partners in memory across invocations, while the
    /// extension commits each batch's offsets when its invocation ends, so an
    /// instance that scales in or restarts would lose every waiting record.
    pub fn check_for_trigger(&self) -> Result<(), DefinitionError> {
        if self.join.is_none() {
            return Ok(());
        }
        Err(DefinitionError {
            entry: None,
            pipeline: Some(self.name.clone()),
            field: "join".into(),
            reason: "a join cannot run behind the Kafka trigger (the trigger commits every \
                     batch when its invocation ends, and waiting records live in memory, so a \
                     restart or scale-in would lose them): run this pipeline with `sluice \
                     enrich --pipeline FILE`, a consumer-group worker that commits only \
                     finished records"
                .into(),
        })
    }

    pub fn group_id(&self) -> String {
        self.group_id
            .clone()
            .unwrap_or_else(|| format!("sluice-{}", self.name))
    }

    pub fn metadata_pairs(&self) -> crate::runtime::Metadata {
        std::sync::Arc::new(
            self.metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    fn validate(&self) -> Result<(), DefinitionError> {
        let fail = |field: &str, reason: String| {
            Err(DefinitionError {
                entry: None,
                pipeline: Some(self.name.clone()),
                field: field.to_owned(),
                reason,
            })
        };
        if !crate::names::is_valid(&self.name) {
            return fail(
                "name",
                format!(
                    "`{}` is not a valid pipeline name: use {}",
                    self.name.chars().take(80).collect::<String>(),
                    crate::names::NAME_RULE
                ),
            );
        }
        for (field, topics) in [("inputs", &self.inputs), ("outputs", &self.outputs)] {
            if topics.is_empty() {
                return fail(field, "names no topic; at least one is needed".into());
            }
            if let Some((i, _)) = topics.iter().enumerate().find(|(_, t)| t.trim().is_empty()) {
                return fail(&format!("{field}[{i}]"), "is an empty topic name".into());
            }
            for (i, topic) in topics.iter().enumerate() {
                if topics[..i].contains(topic) {
                    return fail(
                        &format!("{field}[{i}]"),
                        format!("`{topic}` is listed twice"),
                    );
                }
            }
        }
        if let Some(i) = self.outputs.iter().position(|o| self.inputs.contains(o)) {
            return fail(
                &format!("outputs[{i}]"),
                format!(
                    "`{}` is also an input: the pipeline would read its own output",
                    self.outputs[i]
                ),
            );
        }
        if self.dead_letter.trim().is_empty() {
            return fail("dead_letter", "must name a topic".into());
        }
        if self.inputs.contains(&self.dead_letter) || self.outputs.contains(&self.dead_letter) {
            return fail(
                "dead_letter",
                format!("`{}` is also an input or output topic", self.dead_letter),
            );
        }
        if let Err(error) = crate::names::TransformName::parse(self.transform.name()) {
            let field = match self.transform {
                TransformRef::Active(_) => "transform",
                TransformRef::Pinned { .. } => "transform.name",
            };
            return fail(field, error.to_string());
        }
        if let Some(version) = self.transform.pinned_version()
            && (version.len() < 8 || !version.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return fail(
                "transform.version",
                format!("`{version}` is not a version: give at least 8 hex digits of its SHA-256"),
            );
        }
        if self.batch_size == 0 {
            return fail("batch_size", "must be at least 1".into());
        }
        if self.limits.memory_mb == 0 {
            return fail("limits.memory_mb", "must be at least 1".into());
        }
        if self.limits.deadline_ms == 0 {
            return fail("limits.deadline_ms", "must be at least 1".into());
        }
        if let Some(budget) = self.limits.budget_ms
            && budget < self.limits.deadline_ms
        {
            return fail(
                "limits.budget_ms",
                format!(
                    "{budget} ms is less than limits.deadline_ms ({} ms): a batch's budget must \
                     hold at least one deadline, or a record would be judged on less than its own",
                    self.limits.deadline_ms
                ),
            );
        }
        if let Some(join) = &self.join {
            if self.inputs.len() < 2 {
                return fail("join", "a join needs at least two inputs".into());
            }
            if self.value_format != EnrichFormat::Json {
                return fail(
                    "value_format",
                    "a join reads ids from JSON values: use `json`".into(),
                );
            }
            if join.key.split('.').any(|part| part.trim().is_empty()) {
                return fail(
                    "join.key",
                    format!("`{}` is not a dotted field path", join.key),
                );
            }
            if join.timeout_ms == 0 {
                return fail("join.timeout_ms", "must be at least 1".into());
            }
            if join.max_pending == 0 {
                return fail("join.max_pending", "must be at least 1".into());
            }
            if join.max_pending_bytes == 0 {
                return fail("join.max_pending_bytes", "must be at least 1".into());
            }
            if join.max_fields == 0 {
                return fail("join.max_fields", "must be at least 1".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> serde_json::Value {
        json!({
            "name": "expedia-ext",
            "inputs": ["expedia"],
            "outputs": ["expedia_ext"],
            "transform": "stay-category",
            "dead_letter": "expedia.dlq",
        })
    }

    fn error_of(value: serde_json::Value) -> DefinitionError {
        PipelineDefinition::from_value(&value).expect_err("definition should be refused")
    }

    #[test]
    fn minimal_definition_gets_defaults() {
        let d = PipelineDefinition::from_value(&minimal()).unwrap();
        assert_eq!(d.transform, TransformRef::Active("stay-category".into()));
        assert_eq!(d.value_format, EnrichFormat::Json);
        assert_eq!(d.group_id(), "sluice-expedia-ext");
        assert_eq!(d.batch_size, 500);
        assert_eq!(d.limits.limits(), Limits::default());
        assert_eq!(d.limits.budget(), Duration::from_secs(60));
        assert!(d.join.is_none());
    }

    #[test]
    fn full_definition_round_trips() {
        let mut v = minimal();
        v["inputs"] = json!(["a", "b"]);
        v["transform"] = json!({"name": "stay-category", "version": "0123abcd"});
        v["join"] = json!({"key": "booking.id", "timeout_ms": 500, "on_timeout": "emit_partial"});
        v["metadata"] = json!({"lang": "en"});
        v["limits"] = json!({"memory_mb": 32});
        let d = PipelineDefinition::from_value(&v).unwrap();
        assert_eq!(d.transform.pinned_version(), Some("0123abcd"));
        let join = d.join.as_ref().unwrap();
        assert_eq!(join.on_timeout, OnTimeout::EmitPartial);
        assert_eq!(join.max_pending, 100_000);
        assert_eq!(join.max_pending_bytes, 256 << 20);
        assert_eq!(join.max_fields, 10_000);
        assert_eq!(d.limits.limits().memory_bytes, 32 << 20);
        let again = PipelineDefinition::from_value(&serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(again, d);
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = minimal();
        v["join"] = json!({"key": "id", "timeout_ms": "soon"});
        v["inputs"] = json!(["a", "b"]);
        let e = error_of(v);
        assert_eq!(e.field, "join.timeout_ms");
        assert!(e.to_string().contains("expedia-ext"), "{e}");

        let mut v = minimal();
        v["outputz"] = json!([]);
        assert!(error_of(v).reason.contains("outputz"));

        let mut v = minimal();
        v.as_object_mut().unwrap().remove("dead_letter");
        assert!(error_of(v).reason.contains("dead_letter"));
    }

    #[test]
    fn inconsistent_definitions_are_refused() {
        let cases = [
            (json!({"inputs": []}), "inputs"),
            (json!({"outputs": ["expedia"]}), "outputs[0]"),
            (json!({"inputs": ["a", "a"]}), "inputs[1]"),
            (json!({"dead_letter": "expedia_ext"}), "dead_letter"),
            (json!({"join": {"key": "id", "timeout_ms": 10}}), "join"),
            (
                json!({"transform": {"name": "x", "version": "zz"}}),
                "transform.version",
            ),
            (json!({"batch_size": 0}), "batch_size"),
            (
                json!({"inputs": ["a", "b"], "join": {"key": "id..x", "timeout_ms": 10}}),
                "join.key",
            ),
            (
                json!({"inputs": ["a", "b"], "value_format": "raw",
                       "join": {"key": "id", "timeout_ms": 10}}),
                "value_format",
            ),
            (
                json!({"inputs": ["a", "b"],
                       "join": {"key": "id", "timeout_ms": 10, "max_pending_bytes": 0}}),
                "join.max_pending_bytes",
            ),
            (
                json!({"inputs": ["a", "b"],
                       "join": {"key": "id", "timeout_ms": 10, "max_fields": 0}}),
                "join.max_fields",
            ),
        ];
        for (patch, field) in cases {
            let mut v = minimal();
            for (k, val) in patch.as_object().unwrap() {
                v[k] = val.clone();
            }
            assert_eq!(error_of(v).field, field, "patch {patch}");
        }
    }

    #[test]
    fn a_budget_below_the_deadline_is_refused_and_a_long_deadline_lengthens_the_default() {
        let mut v = minimal();
        v["limits"] = json!({"deadline_ms": 500, "budget_ms": 499});
        let e = error_of(v);
        assert_eq!(e.field, "limits.budget_ms");
        assert!(e.reason.contains("limits.deadline_ms (500 ms)"), "{e}");

        let mut v = minimal();
        v["limits"] = json!({"deadline_ms": 500, "budget_ms": 500});
        let d = PipelineDefinition::from_value(&v).unwrap();
        assert_eq!(d.limits.budget(), Duration::from_millis(500));

        let mut v = minimal();
        v["limits"] = json!({"deadline_ms": 90_000});
        let d = PipelineDefinition::from_value(&v).unwrap();
        assert_eq!(d.limits.budget(), Duration::from_secs(90));
    }

    #[test]
    fn not_json_is_reported() {
        let e = PipelineDefinition::from_json("{").unwrap_err();
        assert!(e.reason.starts_with("not valid JSON"), "{e}");
    }
}
