//! Sluice transformer: adds `stay_category` to each expedia booking (the
//! expedia job's rules, in `stay-rules`). One outcome per record, in order; a value
//! that is not a JSON object fails alone.

#![cfg(target_arch = "wasm32")]

use sluice_guest::{KafkaRecord, Outcome, OutputRecord, Transform};

struct StayCategory;

impl Transform for StayCategory {
    fn process(batch: Vec<KafkaRecord>) -> Vec<Outcome> {
        batch.into_iter().map(categorise_record).collect()
    }
}

fn categorise_record(mut record: KafkaRecord) -> Outcome {
    let Some(value) = record.value.take() else {
        return Outcome::Fail("record has no value (a tombstone), expected a JSON object".into());
    };
    match stay_rules::enrich(&value) {
        Ok(enriched) => Outcome::Emit(vec![OutputRecord::derived_from(record, enriched)]),
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

sluice_guest::export_transformer!(StayCategory);
