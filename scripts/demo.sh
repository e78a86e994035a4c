#!/usr/bin/env bash
# The main job on embedded defaults: services up, guests built, then
# `sluice demo` (generate bookings, categorise them, summarise to Parquet).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

eval "$(scripts/services.sh up)"
export SLUICE_TRANSFORMS_DIR
SLUICE_TRANSFORMS_DIR="$(scripts/build-guests.sh)"
cargo run --quiet --bin sluice -- demo "$@"
