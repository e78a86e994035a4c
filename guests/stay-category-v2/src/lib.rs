//! A next version of `stay-category`, the one a shadow run is tried with
//! (tests, the book's example): the same rules, except that stays of 11 to
//! 14 days become `Long stay` instead of `Standard extended stay`. Every
//! other record comes out byte for byte as `stay-category` makes it.

#![cfg(target_arch = "wasm32")]

use sluice_guest::{KafkaRecord, Outcome, OutputRecord, Transform};
use stay_rules::{LONG, STANDARD_EXTENDED};

struct StayCategoryV2;

impl Transform for StayCategoryV2 {
    fn process(batch: Vec<KafkaRecord>) -> Vec<Outcome> {
        batch.into_iter().map(categorise_record).collect()
    }
}

fn categorise_record(mut record: KafkaRecord) -> Outcome {
    let Some(value) = record.value.take() else {
        return Outcome::Fail("record has no value (a tombstone), expected a JSON object".into());
    };
    let enriched = match stay_rules::categorise(&value) {
        Ok((category, _)) if category == STANDARD_EXTENDED => longer(&value),
        Ok(_) => stay_rules::enrich(&value).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match enriched {
        Ok(enriched) => Outcome::Emit(vec![OutputRecord::derived_from(record, enriched)]),
        Err(reason) => Outcome::Fail(reason),
    }
}

/// The booking with `stay_category` set to `Long stay`.
fn longer(value: &[u8]) -> Result<Vec<u8>, String> {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(value).map_err(|e| e.to_string())?;
    object.insert("stay_category".into(), LONG.into());
    serde_json::to_vec(&object).map_err(|e| e.to_string())
}

sluice_guest::export_transformer!(StayCategoryV2);
