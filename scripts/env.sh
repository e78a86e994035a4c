# shellcheck shell=bash
# Shared settings for the project's scripts; sourced, not run.
# Build outputs live outside the clone so a fresh clone on the same machine
# (CI's) reuses them instead of rebuilding wasmtime and librdkafka.
export SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SLUICE_CACHE/target}"
export SLUICE_KAFKA_BROKERS="${SLUICE_KAFKA_BROKERS:-127.0.0.1:${SLUICE_KAFKA_PORT:-9092}}"
# Where `cargo install` puts binaries (tansu): $CARGO_INSTALL_ROOT when set
# (scripts/fresh-run.sh starts from an empty one), else $CARGO_HOME's.
export SLUICE_CARGO_BIN="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
