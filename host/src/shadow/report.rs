//! What a shadow run found: counts per kind of difference and a bounded
//! sample of the records that differ. Each instance keeps its own and
//! stores it in the registry now and then; a reader adds them up
//! ([`ShadowReport::merge`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::compare::{Difference, Kind};
use crate::record::{KafkaRecord, Outcome};
use crate::runtime::RecordResult;

/// Differing records an instance keeps, and a gathered report shows.
pub const MAX_SAMPLES: usize = 20;

/// Longest value a sample shows, in bytes; longer ones are cut.
const MAX_SHOWN: usize = 4096;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowReport {
    pub transform: String,
    /// The active version (SHA-256) the shadow was compared with.
    pub active: String,
    /// The shadow version (SHA-256).
    pub shadow: String,
    /// The instances (workers, function hosts) this report is from.
    pub instances: Vec<String>,
    /// Records both versions ran.
    pub compared: u64,
    /// Of those, records with the same outcome.
    pub same: u64,
    /// Of those, records whose outcomes differ, by kind.
    pub differ: BTreeMap<Kind, u64>,
    /// Records the shadow did not run: past its CPU budget (whole batches,
    /// counted in `skipped_batches`), or left untried by its time budget.
    pub skipped: u64,
    pub skipped_batches: u64,
    /// Batches the shadow ran.
    pub shadowed_batches: u64,
    /// Time spent in each version on the batches seen, in ms.
    pub active_ms: u64,
    pub shadow_ms: u64,
    /// The first differing records, at most [`MAX_SAMPLES`].
    pub samples: Vec<Sample>,
    /// When this was last updated, ms since the epoch.
    pub updated_ms: i64,
}

/// A record whose outcomes differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Where the input record is.
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub kind: Kind,
    /// The first differing place, a JSON Pointer into the emitted records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Each version's outcome, as `{"emit": [...]}`, `{"drop": true}` or
    /// `{"fail": reason}`.
    pub active: Value,
    pub shadow: Value,
}

impl ShadowReport {
    pub fn new(transform: &str, active: &str, shadow: &str, instance: &str) -> Self {
        ShadowReport {
            transform: transform.to_owned(),
            active: active.to_owned(),
            shadow: shadow.to_owned(),
            instances: vec![instance.to_owned()],
            updated_ms: crate::clock::now_ms(),
            ..ShadowReport::default()
        }
    }

    /// Counts the comparison of `input`'s outcomes, keeping a sample
    /// while there is room.
    pub fn record(
        &mut self,
        input: &KafkaRecord,
        active: &RecordResult,
        shadow: &RecordResult,
        difference: Option<Difference>,
    ) {
        self.compared += 1;
        let Some(Difference { kind, path }) = difference else {
            self.same += 1;
            return;
        };
        *self.differ.entry(kind).or_default() += 1;
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(Sample {
                topic: input.topic.clone(),
                partition: input.partition,
                offset: input.offset,
                kind,
                path,
                active: outcome_json(active),
                shadow: outcome_json(shadow),
            });
        }
    }

    /// Records that differ, of every kind.
    pub fn differing(&self) -> u64 {
        self.differ.values().sum()
    }

    /// Adds `other` (another instance's report of the same versions) to
    /// this one; samples stay capped.
    pub fn merge(&mut self, other: ShadowReport) {
        self.instances.extend(other.instances);
        self.compared += other.compared;
        self.same += other.same;
        for (kind, count) in other.differ {
            *self.differ.entry(kind).or_default() += count;
        }
        self.skipped += other.skipped;
        self.skipped_batches += other.skipped_batches;
        self.shadowed_batches += other.shadowed_batches;
        self.active_ms += other.active_ms;
        self.shadow_ms += other.shadow_ms;
        let room = MAX_SAMPLES.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
        self.updated_ms = self.updated_ms.max(other.updated_ms);
    }
}

/// An outcome as a sample shows it: values as JSON when they are JSON,
/// else as text (hex when not UTF-8), cut past [`MAX_SHOWN`] bytes.
fn outcome_json(result: &RecordResult) -> Value {
    let shown = |bytes: Option<&[u8]>| -> Value {
        let Some(bytes) = bytes else {
            return Value::Null;
        };
        if bytes.len() > MAX_SHOWN {
            let head = String::from_utf8_lossy(bytes.get(..MAX_SHOWN).unwrap_or(bytes));
            return Value::String(format!("{head}… ({} bytes)", bytes.len()));
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text).unwrap_or_else(|_| text.into()),
            Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        }
    };
    match result {
        Ok(Outcome::Emit(records)) => json!({"emit": records.iter().map(|r| json!({
            "topic": r.topic,
            "key": shown(r.key.as_deref()),
            "value": shown(r.value.as_deref()),
            "headers": r.headers.iter().map(|h| json!([h.key, shown(h.value.as_deref())])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()}),
        Ok(Outcome::Drop) => json!({"drop": true}),
        Ok(Outcome::Fail(reason)) => json!({"fail": reason}),
        Err(error) => json!({"fail": error.to_string(), "kind": error.failure.kind()}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::compare::compare;

    fn emit(value: &str) -> RecordResult {
        Ok(Outcome::Emit(vec![crate::record::OutputRecord {
            topic: None,
            key: None,
            value: Some(value.as_bytes().to_vec()),
            headers: Vec::new(),
        }]))
    }

    fn counted(instance: &str, differing: usize) -> ShadowReport {
        let mut report = ShadowReport::new("t", "a", "b", instance);
        for offset in 0..30 {
            let input = KafkaRecord::from_value("in", offset, b"{}".to_vec());
            let shadow = if (offset as usize) < differing {
                emit(r#"{"x":2}"#)
            } else {
                emit(r#"{"x":1}"#)
            };
            let active = emit(r#"{"x":1}"#);
            let difference = compare(&active, &shadow);
            report.record(&input, &active, &shadow, difference);
        }
        report
    }

    #[test]
    fn counts_and_samples_add_up_with_samples_capped() {
        let one = counted("w1", 25);
        assert_eq!((one.compared, one.same, one.differing()), (30, 5, 25));
        assert_eq!(one.samples.len(), MAX_SAMPLES);
        let first = &one.samples[0];
        assert_eq!(
            (first.offset, first.path.as_deref()),
            (0, Some("/0/value/x"))
        );
        assert_eq!(
            first.active,
            json!({"emit": [{"topic": null, "key": null, "value": {"x": 1}, "headers": []}]})
        );
        let mut gathered = one;
        gathered.merge(counted("w2", 3));
        assert_eq!(gathered.instances, ["w1", "w2"]);
        assert_eq!(
            (gathered.compared, gathered.same, gathered.differing()),
            (60, 32, 28)
        );
        assert_eq!(gathered.differ.get(&Kind::Records), Some(&28));
        assert_eq!(gathered.samples.len(), MAX_SAMPLES);
    }

    #[test]
    fn a_long_value_is_cut_in_a_sample() {
        let long = "x".repeat(MAX_SHOWN * 2);
        let shown = outcome_json(&emit(&long));
        let text = shown["emit"][0]["value"].as_str().unwrap();
        assert!(text.len() < MAX_SHOWN + 40, "{}", text.len());
        assert!(
            text.ends_with(&format!("({} bytes)", MAX_SHOWN * 2)),
            "{text}"
        );
    }
}
