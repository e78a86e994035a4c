//! stay-category as it was built against `sluice:transform@0.1.0`
//! (`wit/v0.1/`, a batch as a list of records), with wit-bindgen: the peer
//! `tests/benches/stay_category.rs` measures the 0.2.0 boundary against,
//! and a 0.1.0 component the host must keep running.

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    world: "transformer",
    path: "../../wit/v0.1",
});

use sluice::transform::types::{KafkaRecord, Outcome, OutputRecord};

struct StayCategoryV01;

impl exports::sluice::transform::transform::Guest for StayCategoryV01 {
    fn process(batch: Vec<KafkaRecord>) -> Vec<Outcome> {
        batch.into_iter().map(categorise_record).collect()
    }
}

fn categorise_record(mut record: KafkaRecord) -> Outcome {
    let Some(value) = record.value.take() else {
        return Outcome::Fail("record has no value (a tombstone), expected a JSON object".into());
    };
    match stay_rules::enrich(&value) {
        Ok(enriched) => Outcome::Emit(vec![OutputRecord {
            topic: None,
            key: record.key,
            value: Some(enriched),
            headers: record.headers,
        }]),
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

export!(StayCategoryV01);
