//! A transformer that misbehaves on request, so the host's defences can be
//! tested with a real component. Each record's value is a JSON object whose
//! `do` field says what to do (`act.rs`):
//! `trap` (panic), `loop` (spin forever), `alloc` (allocate `mb` MiB),
//! `drop`, `fail` (with `reason`), `metadata` (emit the pipeline metadata),
//! `log` (log `message` at warn), `grow` (emit a value of `bytes` bytes, a
//! record grown past what a broker takes); anything else echoes the value.
//!
//! `break` echoes the record, then breaks the batch's whole answer in the
//! way its `field` names, to test the host's check of
//! `sluice:transform@0.2.0`'s results (`breach.rs`).

#![cfg(target_arch = "wasm32")]

mod act;
mod breach;

mod api {
    pub use sluice_guest::{KafkaRecord, Level, Outcome, OutputRecord, log, metadata};
}

use sluice_guest::transformer::exports::sluice::transform::transform::Guest;
use sluice_guest::{Records, Results, raw};

struct Misbehave;

impl Guest for Misbehave {
    fn process(batch: raw::Batch) -> raw::Results {
        let records = Records::new(&batch).to_owned_records();
        let breaches: Vec<String> = records.iter().filter_map(breach::asked).collect();
        let outcomes = records.into_iter().map(act::act).collect();
        let mut results = Results::from_outcomes(outcomes).into_raw();
        for field in &breaches {
            breach::apply(&mut results, field);
        }
        results
    }
}

sluice_guest::__export_transformer_world!(Misbehave);
