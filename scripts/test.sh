#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs everything (the full
# `setup.sh`: the demo's set plus Chromium, cargo-lambda, componentize-py
# and -js, the infra checkers, the Python tools), starts the real services,
# builds every guest component, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# CI builds once: incremental artifacts would only take disk (gigabytes).
if [[ "${CI:-}" == true ]]; then
  export CARGO_INCREMENTAL=0
fi
scripts/prune-target.sh
scripts/setup.sh test
eval "$(scripts/services.sh up)"
scripts/build-guests.sh all >/dev/null
export SLUICE_GUESTS_DIR="$CARGO_TARGET_DIR/wasm32-wasip2/guest"
# The Delta tests read their tables back with the deltalake package (and
# the metrics tests parse with prometheus-client); here they must be there
# (a plain `cargo test` skips those checks when they are not).
scripts/setup.sh python-tools
export SLUICE_DELTA_PYTHON="$SLUICE_CACHE/pytools/bin/python"
# Tests use fresh topic names, so they can share the broker and run in
# parallel; the guest tests build the stay guests natively too.
cargo test --workspace --all-targets --no-fail-fast \
  --features sluice-tests/integration-tests,sluice/integration-tests "$@"
# The book (docs/): a page that does not build fails the run; the tests
# above already checked that every test it cites exists and that its
# reference pages match the code.
"$SLUICE_CARGO_BIN/mdbook" build docs --dest-dir "$CARGO_TARGET_DIR/book" >/dev/null
# infra/ without a cloud: parse, cross-check the settings against the
# binary cargo test just built, static scan (about 10 s).
scripts/check-infra.sh
# The Avro fuzz targets, a minute each (the build: about 4 min the first
# time on a machine, seconds after); a crash fails the run with its input.
scripts/fuzz.sh
