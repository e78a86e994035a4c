#!/usr/bin/env bash
# Times the newcomer path as a fresh machine would take it: a clone of this
# repository in a temporary folder, with empty caches (SLUICE_CACHE and the
# cargo target folder pointed at new folders, tansu installed into a new
# cargo root), then `scripts/demo.sh`, then optionally `scripts/test.sh`.
# What is already on the machine (the Rust toolchain, apt packages, the
# crates.io download cache) is kept: a fresh machine has the first and
# fetches the others, which this script does not time.
#
# Usage: scripts/fresh-run.sh [--with-tests]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-fresh.XXXXXX")"
log() { printf 'fresh-run: %s\n' "$*" >&2; }

git clone --quiet "$here" "$work/sluice"
export SLUICE_CACHE="$work/cache"
export CARGO_TARGET_DIR="$work/cache/target"
export CARGO_INSTALL_ROOT="$work/cargo-root"
export PATH="$CARGO_INSTALL_ROOT/bin:$PATH"
# Ports of their own, so a developer's running services stay untouched.
export SLUICE_KAFKA_PORT="${SLUICE_KAFKA_PORT:-19092}"
export SLUICE_AZURITE_PORT="${SLUICE_AZURITE_PORT:-10010}"
log "$(date -u +%F), $(nproc) cores; clone in $work/sluice, caches in $SLUICE_CACHE"

started=$SECONDS
(cd "$work/sluice" && scripts/demo.sh) >"$work/demo.log" 2>&1 || {
  log "the demo failed; its output is in $work/demo.log"
  exit 1
}
demo=$((SECONDS - started))
log "demo: $((demo / 60)) min $((demo % 60)) s (output in $work/demo.log)"
# The CPU time of the run (user and system, every child): unlike the wall
# time, it does not grow with other work on the machine; half of it is
# the least two busy cores can take.
log "demo CPU (user, system): $(times | tail -n 1)"
grep -E '^setup: .* took|^demo: .* took' "$work/demo.log" >&2 || true
# A clean first run: no ERROR or WARN lines, no colour codes in a log file.
noisy="$(grep -cE ' ERROR | WARN |^(warning|error)[:[]' "$work/demo.log" || true)"
colours="$(grep -c $'\e' "$work/demo.log" || true)"
log "demo output: $noisy ERROR/WARN lines, $colours lines with colour codes"

if [[ "${1:-}" == --with-tests ]]; then
  started=$SECONDS
  (cd "$work/sluice" && CI=true scripts/test.sh) >"$work/test.log" 2>&1 || {
    log "the tests failed; their output is in $work/test.log"
    exit 1
  }
  tests=$((SECONDS - started))
  log "tests after the demo: $((tests / 60)) min $((tests % 60)) s (output in $work/test.log)"
fi
(cd "$work/sluice" && scripts/services.sh down) >/dev/null 2>&1 || true
log "done; remove $work when you no longer need its logs"
