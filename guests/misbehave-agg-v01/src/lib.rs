//! The misbehaving aggregator (`guests/misbehave-agg/src/window.rs`, the
//! same code) built against `sluice:transform@0.1.0` (`wit/v0.1/`) with
//! wit-bindgen rather than the SDK, which builds against 0.2.0.

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    world: "aggregator",
    path: "../../wit/v0.1",
});

#[path = "../../misbehave-agg/src/window.rs"]
mod window;

mod api {
    pub use crate::sluice::transform::types::{KafkaRecord, OutputRecord};
}

struct MisbehaveAggV01;

impl exports::sluice::transform::aggregate::Guest for MisbehaveAggV01 {
    fn add(batch: Vec<api::KafkaRecord>) {
        window::add(batch);
    }

    fn finish() -> Vec<api::OutputRecord> {
        window::finish()
    }
}

export!(MisbehaveAggV01);
