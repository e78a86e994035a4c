#!/usr/bin/env bash
# Builds the transforms in guests/ as wasm32-wasip2 components and prints the
# folder that holds them (the tests and the demo read them from there).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

guests=(stay-category stay-summary clickstream-agg misbehave language-detect)
args=()
for guest in "${guests[@]}"; do args+=(-p "$guest"); done
cargo build --quiet --profile guest --target wasm32-wasip2 "${args[@]}" >&2
echo "$CARGO_TARGET_DIR/wasm32-wasip2/guest"
