//! Everything a Sluice transform needs: the record types and host functions
//! of `wit/`, the trait to implement, and the macro that exports it.
//!
//! ```ignore
//! struct Upper;
//! impl sluice_guest::Transform for Upper {
//!     fn process(batch: Vec<KafkaRecord>) -> Vec<Outcome> { /* ... */ }
//! }
//! sluice_guest::export_transformer!(Upper);
//! ```
//! Build with `cargo build --release --target wasm32-wasip2`.

pub mod transformer {
    wit_bindgen::generate!({
        world: "transformer",
        path: "../../wit/v0.1",
        pub_export_macro: true,
        export_macro_name: "export_transformer",
        default_bindings_module: "sluice_guest::transformer",
    });
}

pub mod aggregator {
    wit_bindgen::generate!({
        world: "aggregator",
        path: "../../wit/v0.1",
        pub_export_macro: true,
        export_macro_name: "export_aggregator",
        default_bindings_module: "sluice_guest::aggregator",
        with: {
            "sluice:transform/types@0.1.0": crate::transformer::sluice::transform::types,
            "sluice:transform/host@0.1.0": crate::transformer::sluice::transform::host,
        },
    });
}

pub use aggregator::export_aggregator;
pub use aggregator::exports::sluice::transform::aggregate::Guest as Aggregate;
pub use transformer::export_transformer;
pub use transformer::exports::sluice::transform::transform::Guest as Transform;
pub use transformer::sluice::transform::host::{Level, log, metadata};
pub use transformer::sluice::transform::types::{Header, KafkaRecord, Outcome, OutputRecord};

impl OutputRecord {
    /// A record for every declared output topic, keeping the input's key
    /// and headers: what most transforms emit.
    pub fn derived_from(input: KafkaRecord, value: Vec<u8>) -> Self {
        OutputRecord {
            topic: None,
            key: input.key,
            value: Some(value),
            headers: input.headers,
        }
    }
}

/// Hands each record's value to `add`; a record without a value, or one
/// `add` refuses, is logged with where it came from and skipped, since an
/// aggregator has no dead-letter outcome.
pub fn add_values(batch: Vec<KafkaRecord>, mut add: impl FnMut(&[u8]) -> Result<(), String>) {
    for record in batch {
        let result = match &record.value {
            Some(value) => add(value),
            None => Err("record has no value".to_owned()),
        };
        if let Err(reason) = result {
            log(
                Level::Warn,
                &format!(
                    "skipped topic {} partition {} offset {}: {reason}",
                    record.topic, record.partition, record.offset
                ),
            );
        }
    }
}
