#!/usr/bin/env bash
# Builds the transforms in guests/ as wasm32-wasip2 components and prints the
# folder that holds them (the tests and the demo read them from there): the
# Rust guests with cargo, the Python guests (guests/python/*/app.py) with
# componentize-py and the JavaScript ones (guests/js/*/app.js) with
# componentize-js, both installed by `scripts/setup.sh` (the tests' setup;
# the demo's has neither).
#
# Usage: build-guests.sh [all|demo]
#   all    every guest; a missing componentize-py or -js is an error
#          (scripts/test.sh)
#   demo   only the Rust guests `sluice demo` loads (stay-category,
#          stay-summary; scripts/demo.sh)
#   (none) every Rust guest, and the Python and JavaScript ones whose
#          toolchain is installed
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

mode="${1:-}"
case "$mode" in
  all | demo | "") ;;
  *) echo "usage: $0 [all|demo]" >&2; exit 2 ;;
esac
root=$PWD
out="$CARGO_TARGET_DIR/wasm32-wasip2/guest"

log() { printf 'build-guests: %s\n' "$*" >&2; }

# The *-v01 guests are built against sluice:transform@0.1.0 (wit/v0.1), to show
# such components keep working; the rest with the SDK against 0.2.0 (wit/).
guests=(stay-category stay-category-v2 stay-summary clickstream-agg misbehave misbehave-agg
  language-detect stay-category-v01 misbehave-v01 misbehave-agg-v01)
if [[ "$mode" == demo ]]; then
  guests=(stay-category stay-summary)
fi
args=()
for guest in "${guests[@]}"; do args+=(-p "$guest"); done
cargo build --quiet --profile guest --target wasm32-wasip2 "${args[@]}" >&2
if [[ "$mode" == demo ]]; then
  echo "$out"
  exit 0
fi

# has_tool NAME PATH: whether a script guest's toolchain is there; without
# it, an error under `all`, else a note and those guests are skipped.
has_tool() {
  [[ -x "$2" ]] && return 0
  if [[ "$mode" == all ]]; then
    log "error: $1 not found at $2: run scripts/setup.sh"
    exit 1
  fi
  log "skipping the guests that need $1 (not installed; scripts/setup.sh installs it)"
  return 1
}

# --- Python guests -----------------------------------------------------------
# Each folder of guests/python with an app.py is one component named after the
# folder. Folders without one (sluice_guest, stay_rules) are libraries copied
# into every build. A requirements.txt is installed into the build with pip
# (pinned, hashed, wheels only). A module-level `Aggregate` in app.py makes an
# aggregator, else a transformer. A component takes 15-30 s to build, so each
# is rebuilt only when its inputs' hash differs from the stamp of its last build.
componentize_py="$SLUICE_CACHE/componentize-py/bin/componentize-py"
work="$CARGO_TARGET_DIR/python-guests"

python_libraries() {
  local dir
  for dir in guests/python/*/; do
    [[ -f "$dir/app.py" ]] || printf '%s\n' "${dir%/}"
  done
}

# The hash of everything a Python guest's component is made from.
inputs_hash() {
  local guest_dir=$1
  {
    "$componentize_py" --version
    sha256sum wit/sluice.wit wit/v0.1/sluice.wit
    # shellcheck disable=SC2046
    find "$guest_dir" $(python_libraries) -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
      -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

build_python_guest() {
  local guest_dir=$1 name hash stamp build world
  name=$(basename "$guest_dir")
  hash=$(inputs_hash "$guest_dir")
  stamp="$work/$name.stamp"
  if [[ -f "$out/$name.wasm" && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    return
  fi
  build="$work/$name"
  rm -rf "$build"
  mkdir -p "$build/src"
  local lib
  while read -r lib; do cp -r "$lib" "$build/src/"; done < <(python_libraries)
  cp -r "$guest_dir"/. "$build/src/"
  find "$build/src" -name __pycache__ -prune -exec rm -rf {} +
  if [[ -f "$guest_dir/requirements.txt" ]]; then
    "$SLUICE_CACHE/componentize-py/bin/pip" install --quiet --disable-pip-version-check \
      --no-deps --require-hashes --only-binary :all: \
      --target "$build/deps" -r "$guest_dir/requirements.txt" >&2
  fi
  world=transformer
  if grep -qE '^Aggregate[[:space:]]*=' "$guest_dir/app.py"; then world=aggregator; fi
  log "building $name ($world) with $("$componentize_py" --version)"
  local paths=(-p "$build/src")
  [[ -d "$build/deps" ]] && paths+=(-p "$build/deps")
  # Run from the build folder without VIRTUAL_ENV: componentize-py also
  # searches the current folder and a virtualenv's site-packages.
  (cd "$build" && env -u VIRTUAL_ENV "$componentize_py" --quiet -d "$root/wit/v0.1" -w "$world" \
    componentize "${paths[@]}" app -o "$build/$name.wasm") >&2
  mv "$build/$name.wasm" "$out/$name.wasm"
  printf '%s\n' "$hash" > "$stamp"
}

build_python_guests() {
  mkdir -p "$work" "$out"
  # Clones and worktrees of this repository share the target folder: one build
  # of the script guests at a time.
  exec 8>"$work/build.lock"
  flock 8
  # Stub bindings (the same dataclasses, host functions unconnected) so that
  # the benchmark can run a Python guest's code in CPython as well.
  rm -rf "$work/bindings"
  for world in transformer aggregator; do
    "$componentize_py" --quiet -d wit/v0.1 -w "$world" bindings "$work/bindings/$world" >&2
  done
  # Two at a time: componentize-py is mostly single-threaded.
  pids=()
  for app in guests/python/*/app.py; do
    build_python_guest "$(dirname "$app")" &
    pids+=($!)
    if ((${#pids[@]} >= 2)); then
      wait "${pids[0]}"
      pids=("${pids[@]:1}")
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
}
if has_tool componentize-py "$componentize_py"; then
  build_python_guests
fi

# --- JavaScript guests -------------------------------------------------------
# Each folder of guests/js with an app.js is one component named after the
# folder; the files beside the folders (the SDK) are imported by relative
# path. Stamped like the Python guests.
componentize_js="$SLUICE_CACHE/componentize-js/node_modules/.bin/componentize-js"
js_work="$CARGO_TARGET_DIR/js-guests"

build_js_guest() {
  local guest_dir=$1 name hash stamp world
  name=$(basename "$guest_dir")
  hash=$({
    "$componentize_js" --version
    sha256sum wit/sluice.wit wit/v0.1/sluice.wit
    find guests/js -type f ! -path '*/node_modules/*' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1)
  stamp="$js_work/$name.stamp"
  if [[ -f "$out/$name.wasm" && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    return
  fi
  world=transformer
  if grep -qE '^export const aggregate\b' "$guest_dir/app.js"; then world=aggregator; fi
  log "building $name ($world) with componentize-js $("$componentize_js" --version)"
  # No wasi:http: the host links none, and a guest has no network.
  "$componentize_js" "$guest_dir/app.js" --wit wit/v0.1 --world-name "$world" \
    --disable http fetch-event -o "$js_work/$name.wasm" >&2
  mv "$js_work/$name.wasm" "$out/$name.wasm"
  printf '%s\n' "$hash" > "$stamp"
}

if has_tool componentize-js "$componentize_js"; then
  mkdir -p "$js_work" "$out"
  for app in guests/js/*/app.js; do
    build_js_guest "$(dirname "$app")"
  done
fi

echo "$out"
