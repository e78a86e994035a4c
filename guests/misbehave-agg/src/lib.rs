//! An aggregator that misbehaves on request, so the host's isolation of
//! aggregators can be tested with a real component. It counts the records
//! of its window (`{"count": n, "offsets": [..]}` at the end, the offsets
//! it counted, in order) unless a record's value is a JSON object whose
//! `do` field is `trap` (panic) or `loop` (spin forever) (`window.rs`).

#![cfg(target_arch = "wasm32")]

mod window;

mod api {
    pub use sluice_guest::{KafkaRecord, OutputRecord};
}

struct MisbehaveAgg;

impl sluice_guest::Aggregate for MisbehaveAgg {
    fn add(batch: Vec<api::KafkaRecord>) {
        window::add(batch);
    }

    fn finish() -> Vec<api::OutputRecord> {
        window::finish()
    }
}

sluice_guest::export_aggregator!(MisbehaveAgg);
