//! The misbehaving transformer (`guests/misbehave/src/act.rs`, the same
//! code) built against `sluice:transform@0.1.0` (`wit/v0.1/`) with
//! wit-bindgen rather than the SDK, which builds against 0.2.0: so the
//! tests show that components built against 0.1.0 keep working, with the
//! same outcomes as their 0.2.0 twin.

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    world: "transformer",
    path: "../../wit/v0.1",
});

#[path = "../../misbehave/src/act.rs"]
mod act;

mod api {
    pub use crate::sluice::transform::host::{Level, log, metadata};
    pub use crate::sluice::transform::types::{KafkaRecord, Outcome, OutputRecord};
}

use api::{KafkaRecord, Outcome, OutputRecord};

impl OutputRecord {
    /// As the SDK's: the input's key and headers kept, to every output.
    pub fn derived_from(input: KafkaRecord, value: Vec<u8>) -> Self {
        OutputRecord {
            topic: None,
            key: input.key,
            value: Some(value),
            headers: input.headers,
        }
    }
}

struct MisbehaveV01;

impl exports::sluice::transform::transform::Guest for MisbehaveV01 {
    fn process(batch: Vec<KafkaRecord>) -> Vec<Outcome> {
        batch.into_iter().map(act::act).collect()
    }
}

export!(MisbehaveV01);
