#!/usr/bin/env bash
# The main job on embedded defaults: the demo's setup (the wasm32-wasip2
# target, C build tools, tansu, Azurite: `setup.sh demo`, not the tests'
# tools), services up, Sluice and the two guests the demo loads built, then
# `sluice demo` (generate bookings, categorise them, summarise to Parquet).
#
# On a first run the two long builds, tansu's (in the setup) and Sluice's,
# run side by side: each leaves a core idle for minutes (a big crate, a C
# library, a link), which the other fills. The setup has the terminal
# (cargo's progress for tansu); Sluice's build writes to a log.
# At the end, one `setup: ... took` / `demo: ... took` line per step.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

log() { printf 'demo: %s\n' "$*" >&2; }
duration() {
  if (($1 >= 60)); then
    printf '%d min %d s' $(($1 / 60)) $(($1 % 60))
  else
    printf '%d s' "$1"
  fi
}

started=$SECONDS
# Every step's time, printed together at the end (setup.sh appends its own).
export SLUICE_TIMES
SLUICE_TIMES="$(mktemp)"
setup_pid=""
cleanup() {
  # An interrupted or failed demo stops a setup still building.
  if [[ -n "$setup_pid" ]]; then
    kill -TERM -- "-$setup_pid" 2>/dev/null || true
  fi
  rm -f "$SLUICE_TIMES"
}
trap cleanup EXIT
took() { printf 'demo: %s took %s\n' "$1" "$(duration $((SECONDS - $2)))" >>"$SLUICE_TIMES"; }

# What both builds need (the C compiler, cmake, the wasm target): seconds
# when present.
scripts/setup.sh build-tools

# The rest of the setup in the background, in a session of its own so that
# the trap above can stop it and the cargo it runs.
setsid scripts/setup.sh demo </dev/null &
setup_pid=$!

mkdir -p "$SLUICE_CACHE/logs"
build_log="$SLUICE_CACHE/logs/demo-build.log"
step=$SECONDS
if [[ -x "$CARGO_TARGET_DIR/debug/sluice" ]]; then
  log "building Sluice and the demo's guests (output in $build_log)"
else
  log "building Sluice and the demo's guests (about 15-19 min on two cores beside the tansu build; output in $build_log)"
fi
# One cargo after the other: they share the target folder's lock. At a
# lower priority than the tansu build: tansu's last ~4 minutes are one crate
# after another (tansu-sans-io, tansu-storage, the binary) on one core, which
# should start as early as it can while this build fills the other core.
if ! { nice -n 5 scripts/build-guests.sh demo && nice -n 5 cargo build --bin sluice; } \
  >"$build_log" 2>&1; then
  log "error: the build failed; last lines of $build_log:"
  tail -n 30 "$build_log" >&2
  exit 1
fi
took "Sluice and guests build" "$step"
transforms_dir="$CARGO_TARGET_DIR/wasm32-wasip2/guest"

step=$SECONDS
wait "$setup_pid" || {
  setup_pid=""
  log "error: the setup failed (its messages are above)"
  exit 1
}
setup_pid=""
if ((SECONDS - step > 5)); then
  took "wait for the setup after the build" "$step"
fi

step=$SECONDS
eval "$(scripts/services.sh up)"
took "services start" "$step"

step=$SECONDS
export SLUICE_TRANSFORMS_DIR="$transforms_dir"
cargo run --quiet --bin sluice -- demo "$@"
took "sluice demo" "$step"
took total "$started"
cat "$SLUICE_TIMES" >&2
