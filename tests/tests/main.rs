//! The library's integration tests, one binary: each file of this folder is
//! a module (`cargo test -p sluice-tests --test integration enrich::` runs
//! one). One binary links wasmtime, librdkafka, arrow and object_store
//! once, where a binary per file linked them twenty times. The tests that
//! need no service (the map, the documents, the guests, the parsers) always
//! run; the others need the `integration-tests` feature.

mod architecture;
mod contract;
mod docs;
mod guests;
mod language_detect;
mod parsers;
mod python_guests;
mod sandbox;

// Against the services `scripts/services.sh up` starts (the tansu broker,
// Azurite): with `--features integration-tests`, as scripts/test.sh runs.
#[cfg(feature = "integration-tests")]
mod artifacts;
#[cfg(feature = "integration-tests")]
mod broker;
#[cfg(feature = "integration-tests")]
mod delta;
#[cfg(feature = "integration-tests")]
mod enrich;
#[cfg(feature = "integration-tests")]
mod entra;
#[cfg(feature = "integration-tests")]
mod export;
#[cfg(feature = "integration-tests")]
mod export_exactly_once;
#[cfg(feature = "integration-tests")]
mod export_lake;
#[cfg(feature = "integration-tests")]
mod export_seams;
#[cfg(feature = "integration-tests")]
mod fetch;
#[cfg(feature = "integration-tests")]
mod hot_reload;
#[cfg(feature = "integration-tests")]
mod import;
#[cfg(feature = "integration-tests")]
mod import_lease;
#[cfg(feature = "integration-tests")]
mod lake_read;
#[cfg(feature = "integration-tests")]
mod read_plan;
#[cfg(feature = "integration-tests")]
mod registry;
#[cfg(feature = "integration-tests")]
mod search;
#[cfg(feature = "integration-tests")]
mod shadow;
#[cfg(feature = "integration-tests")]
mod storage;
