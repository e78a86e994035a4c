//! Answers that break `sluice:transform@0.2.0`'s contract, one way per
//! `field`, for the host to refuse: `verdict` (a verdict byte of 7),
//! `verdicts` (one verdict short), `emitted` (one count too many),
//! `emitted-sum` (an emit claiming an output it did not write), `reasons`
//! (a reason without a fail), `span-past-end`, `span-decreasing` (needs a
//! keyed record), `destination` (a topic that is not in `topics`),
//! `presence` (an unknown bit), `header-values` (a byte of 5),
//! `header-name` (a name that is not UTF-8; needs a header).

use sluice_guest::{KafkaRecord, raw};

/// The `field` a record asks to break, if it asks.
pub fn asked(record: &KafkaRecord) -> Option<String> {
    let request: serde_json::Value = serde_json::from_slice(record.value.as_deref()?).ok()?;
    if request.get("do")?.as_str()? != "break" {
        return None;
    }
    Some(request.get("field")?.as_str()?.to_owned())
}

pub fn apply(results: &mut raw::Results, field: &str) {
    let outputs = &mut results.outputs;
    match field {
        "verdict" => set(&mut results.verdicts, 0, 7),
        "verdicts" => drop(results.verdicts.pop()),
        "emitted" => results.emitted.push(0),
        "emitted-sum" => {
            if let Some(at) = results.verdicts.iter().position(|&v| v == 0) {
                let claimed = results.emitted.get(at).copied().unwrap_or(0) + 1;
                set(&mut results.emitted, at, claimed);
            }
        }
        "reasons" => results.reasons.push("a reason for no fail".into()),
        "span-past-end" => {
            let past = outputs.data.len() as u32 + 10;
            if let Some(last) = outputs.ends.last_mut() {
                *last = past;
            }
        }
        "span-decreasing" => {
            if let [key_end, value_end, ..] = outputs.ends[..] {
                let _ = value_end;
                set(&mut outputs.ends, 1, key_end.saturating_sub(1));
            }
        }
        "destination" => {
            let past = outputs.topics.len() as u32 + 1;
            set(&mut outputs.destinations, 0, past);
        }
        "presence" => set(&mut outputs.presence, 0, 0x80),
        "header-values" => set(&mut outputs.header_values, 0, 5),
        "header-name" => {
            // The first header's name starts where the first record's
            // value ends.
            if let Some(&start) = outputs.ends.get(1) {
                set(&mut outputs.data, start as usize, 0xff);
            }
        }
        _ => {}
    }
}

fn set<T>(column: &mut [T], at: usize, value: T) {
    if let Some(slot) = column.get_mut(at) {
        *slot = value;
    }
}
