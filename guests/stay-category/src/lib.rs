//! Sluice transformer: adds `stay_category` to each expedia booking (the
//! expedia job's rules, in `stay-rules`). One verdict per record, in order;
//! a value that is not a JSON object fails alone. Written on the SDK's
//! record views: each value is read in place from the batch and the
//! enriched one written straight into the answer, so a record costs no
//! allocation of its own.

#![cfg(target_arch = "wasm32")]

use sluice_guest::{Records, Results, TransformViews};

struct StayCategory;

impl TransformViews for StayCategory {
    fn process(batch: &Records<'_>, results: &mut Results) {
        for record in batch {
            match record.value() {
                Some(value) => {
                    results.emit_written(&record, |out| stay_rules::enrich_into(value, out))
                }
                None => results.fail("record has no value (a tombstone), expected a JSON object"),
            }
        }
    }
}

sluice_guest::export_transformer_views!(StayCategory);
