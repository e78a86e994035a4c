//! Host-side bindings generated from `wit/`. The `types` and `host`
//! interfaces are generated once per contract version, for the transformer
//! world, and shared with the aggregator world so that a record has one Rust
//! type everywhere.
//!
//! The host's own record types are those of `sluice:transform@0.1.0`
//! (`wit/v0.1/`): a record as one structure, which the rest of Sluice passes
//! around. Components built against `sluice:transform@0.2.0` (`wit/`) are
//! handed the same records encoded as flat buffers ([`v2`], and
//! `runtime/columns.rs` for the encoding).

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

/// `sluice:transform@0.2.0`: a batch as a few flat buffers.
pub mod v2 {
    pub mod transformer {
        wasmtime::component::bindgen!({
            world: "transformer",
            path: "../wit/sluice.wit",
        });
    }

    pub mod aggregator {
        wasmtime::component::bindgen!({
            world: "aggregator",
            path: "../wit/sluice.wit",
            with: {
                "sluice:transform/types": super::transformer::sluice::transform::types,
                "sluice:transform/host": super::transformer::sluice::transform::host,
            },
        });
    }

    pub use transformer::sluice::transform::host::{self as host_api, Level};
    pub use transformer::sluice::transform::types::{Batch, Outputs, Results, Segment};
}

pub use transformer::sluice::transform::host::{self as host_api, Level};
pub use transformer::sluice::transform::types::{Header, KafkaRecord, Outcome, OutputRecord};
