#!/usr/bin/env bash
# Runs the fuzz targets of host/fuzz/ (sluice-avro: Confluent frames,
# container files, schemas) with cargo-fuzz, each for SECONDS (default
# 60), from the seed corpus in host/fuzz/seeds/ plus what earlier runs on
# this machine found ($SLUICE_CACHE/fuzz/corpus/). A crash, a hang (an input
# taking over 10 s) or an allocation past 2 GiB fails the run; its input is
# kept in $SLUICE_CACHE/fuzz/artifacts/TARGET/ and printed as base64, so a
# CI log alone is enough to reproduce it:
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   base64 -d > crash <<< '...'; RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir host/fuzz TARGET crash
#
# Only sluice-avro and its few dependencies are built, with the fuzzer's
# instrumentation, into $SLUICE_CACHE/fuzz/target (about 4 min the first
# time on two cores, seconds after). cargo-fuzz passes nightly flags
# (-Zsanitizer=address...); the stable toolchain takes them with
# RUSTC_BOOTSTRAP=1, as here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

seconds=${1:-60}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(confluent_frame container_file schema)
fi
scripts/setup.sh fuzz

export RUSTC_BOOTSTRAP=1
fuzz_dir=host/fuzz
work="$SLUICE_CACHE/fuzz"
target_dir="$work/target"
mkdir -p "$work" "$SLUICE_CACHE/logs"
log() { printf 'fuzz: %s\n' "$*" >&2; }

started=$SECONDS
cargo fuzz build --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" >"$SLUICE_CACHE/logs/fuzz-build.log" 2>&1 || {
  tail -n 30 "$SLUICE_CACHE/logs/fuzz-build.log" >&2
  log "error: the fuzz targets do not build (log: $SLUICE_CACHE/logs/fuzz-build.log)"
  exit 1
}
log "built the targets in $((SECONDS - started)) s"

failed=0
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"
  artifacts="$work/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  marker="$work/.started-$target"
  touch "$marker"
  run_log="$SLUICE_CACHE/logs/fuzz-$target.log"
  started=$SECONDS
  if cargo fuzz run --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" "$target" \
    "$corpus" "$fuzz_dir/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" >"$run_log" 2>&1; then
    runs=$(grep -oE 'Done [0-9]+ runs' "$run_log" | grep -oE '[0-9]+' || echo '?')
    log "$target: $runs inputs in $((SECONDS - started)) s, nothing found"
  else
    failed=1
    grep -E 'ERROR: libFuzzer|panicked at|SUMMARY' "$run_log" | head -n 5 >&2 || tail -n 20 "$run_log" >&2
    log "error: $target failed after $((SECONDS - started)) s (log: $run_log)"
    while IFS= read -r -d '' input; do
      log "input kept in $input; as base64:"
      base64 -w 0 "$input" >&2
      echo >&2
    done < <(find "$artifacts" -type f -newer "$marker" -print0)
  fi
  rm -f "$marker"
done
exit "$failed"
