//! The `sluice` binary driven from outside, one test binary: each file of
//! this folder is a module (`cargo test -p sluice --test integration
//! serve::` runs one). The tests that need the services are behind the
//! `integration-tests` feature, which scripts/test.sh turns on.

mod package;

// Against the services `scripts/services.sh up` starts (the tansu broker,
// Azurite): with `--features integration-tests`, as scripts/test.sh runs.
#[cfg(feature = "integration-tests")]
mod cli;
#[cfg(feature = "integration-tests")]
mod cli_registry;
#[cfg(feature = "integration-tests")]
mod enrich_broker_restart;
#[cfg(feature = "integration-tests")]
mod enrich_crash;
#[cfg(feature = "integration-tests")]
mod entra_storage;
#[cfg(feature = "integration-tests")]
mod export_crash;
#[cfg(feature = "integration-tests")]
mod export_lake_crash;
#[cfg(feature = "integration-tests")]
mod health;
#[cfg(feature = "integration-tests")]
mod import_crash;
#[cfg(feature = "integration-tests")]
mod lake_read;
#[cfg(feature = "integration-tests")]
mod lambda;
#[cfg(feature = "integration-tests")]
mod metrics;
#[cfg(feature = "integration-tests")]
mod otlp;
#[cfg(feature = "integration-tests")]
mod serve;
#[cfg(feature = "integration-tests")]
mod shared_artifacts;
