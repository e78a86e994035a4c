#!/usr/bin/env bash
# Checks infra/ without a cloud: every .tf parses, the settings the binary
# reads match the ones the Terraform sets (scripts/check-infra.py), and
# checkov's static scan passes (each skipped check says why in the .tf).
# Needs a built sluice: $SLUICE_BIN, else the debug build in
# $CARGO_TARGET_DIR (which `cargo test` leaves), built if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

tools="$SLUICE_CACHE/infra-tools"
scripts/setup.sh infra-tools

sluice="${SLUICE_BIN:-$CARGO_TARGET_DIR/debug/sluice}"
if [[ ! -x "$sluice" ]]; then
  cargo build -p sluice --quiet
fi

"$tools/hcl2/bin/python" scripts/check-infra.py --sluice "$sluice"

# --skip-download: nothing is fetched from Prisma Cloud (guidelines,
# severities); --quiet lists only failures after the summary.
"$tools/checkov/bin/checkov" --directory infra --framework terraform \
  --quiet --compact --skip-download
