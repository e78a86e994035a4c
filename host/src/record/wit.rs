//! Host-side bindings generated from `wit/`. The `types` and `host`
//! interfaces are generated once, for the transformer world, and shared with
//! the aggregator world so that a record has one Rust type everywhere.

pub mod transformer {
    wasmtime::component::bindgen!({
        world: "transformer",
        path: "../wit/v0.1",
        // Serde: an aggregator journals the records its window took.
        additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
    });
}

pub mod aggregator {
    wasmtime::component::bindgen!({
        world: "aggregator",
        path: "../wit/v0.1",
        with: {
            "sluice:transform/types": super::transformer::sluice::transform::types,
            "sluice:transform/host": super::transformer::sluice::transform::host,
        },
    });
}

pub use transformer::sluice::transform::host::{self as host_api, Level};
pub use transformer::sluice::transform::types::{Header, KafkaRecord, Outcome, OutputRecord};
