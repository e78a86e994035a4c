#!/usr/bin/env bash
# Installs what building, running and testing Sluice needs, by profile:
#
#   setup.sh [test]      everything (the default; scripts/test.sh, so CI): the
#                        demo's set below plus Chromium, cargo-lambda,
#                        componentize-py and componentize-js, the infra/
#                        checkers and the tests' and benches' Python tools
#   setup.sh demo        what scripts/demo.sh needs: the wasm32-wasip2 target,
#                        C build tools (rdkafka bundles librdkafka and compiles
#                        it), the tansu broker and Azurite
#   setup.sh services    what scripts/services.sh needs: build tools, tansu, Azurite
#   setup.sh build-tools the wasm32-wasip2 target and the C build tools
#   setup.sh infra-tools | python-tools   only those virtualenvs
#   setup.sh fuzz        cargo-fuzz, for scripts/fuzz.sh
#   setup.sh docs        mdBook, for the book in docs/ (scripts/test.sh builds it)
#   setup.sh broker-survey  what scripts/broker-survey.sh needs: tansu, a
#                        second tansu build with the turso engine, the Python tools
#
# Idempotent and non-interactive; a run with everything present takes well
# under a second and prints nothing, so services.sh calls it on every `up`.
# Otherwise each missing step is announced once with its usual duration,
# downloads (rustup, npm, apt, PyPI) run in the background while cargo
# compiles tansu in the foreground (with cargo's progress on a terminal), and
# the time each step took is printed at the end as `setup: STEP took TIME`
# (appended to the file $SLUICE_TIMES instead, when a caller set it, so that
# the caller can print every step at its own end).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$HERE/env.sh"
# Where `cargo install` puts tansu: $CARGO_INSTALL_ROOT when set (so
# scripts/fresh-run.sh can start from an empty root), else $CARGO_HOME.
CARGO_BIN="$SLUICE_CARGO_BIN"
LOGS="$SLUICE_CACHE/logs"
TANSU_VERSION=0.6.0
# The tansu build (~550 crates) is the longest step of a first run. Its
# manifest sets no [profile], so cargo's release defaults apply (opt-level 3,
# no LTO, 16 codegen units: CARGO_PROFILE_RELEASE_LTO=false or
# CODEGEN_UNITS=16 are what it has already). What helps: the optimisation level, and the system zstd instead
# of compiling zstd's C (libzstd-dev is among the build packages). Measured
# 2026-12-01 on two cores (`cargo install` into an empty target folder under
# `nice -n 10`, another engineer's builds and benches sharing the machine),
# with the broker's speed: 100,000 records of ~300 bytes produced into a
# fresh sqlite broker, then read 3 times by a librdkafka consumer (best of 3,
# two runs each):
#   settings                               build   CPU      produce/s        read/s
#   release defaults (before)              13:20   ~1500 s  39,000-48,000    30,600-31,900
#   opt-level 1, libsql-ffi 3 (no dynostore) 10:37   ~1200 s  38,000-42,500    28,700-31,600
#   opt-level 0, libsql-ffi 3               7:38     563 s  33,500-43,000    20,000-31,000
#   opt-level 0; 3 for libsql-ffi, libsql,  9:43*    547 s  29,000-38,000    26,700-31,000
#     libsql-sys, crc-fast, crc32fast, tokio (the one chosen)
# (build: wall time; * with the load average at 4-6 from other work. CPU:
# user+sys, or the sum of cargo's unit times where not timed. The reads top
# out near 31,000/s whatever the build, the produce side loses ~20%.) The
# demo's first run compiles tansu beside Sluice on the same two cores, so
# tansu's CPU time decides how long a newcomer waits: the last row takes a
# third of the defaults' CPU and reads as fast within the noise. Dropping
# the dynostore feature saves nothing (object_store is built anyway).
TANSU_BUILD_ENV=(ZSTD_SYS_USE_PKG_CONFIG=1 CARGO_PROFILE_RELEASE_OPT_LEVEL=0)
TANSU_BUILD_CONFIG=()
for package in libsql-ffi libsql-sys libsql crc-fast crc32fast tokio; do
  TANSU_BUILD_CONFIG+=(--config "profile.release.package.$package.opt-level=3")
done
TANSU_ETA="about 8 min alone, 12-17 min beside Sluice's build"
# Newer Azurite releases need Node >= 21.
AZURITE_VERSION=3.35.0
# The Lambda Runtime API emulator (`cargo lambda watch`) the Lambda test runs under.
CARGO_LAMBDA_VERSION=1.9.2
# Runs the fuzz targets of host/fuzz (scripts/fuzz.sh).
CARGO_FUZZ_VERSION=0.13.2
# Builds the book in docs/ (scripts/test.sh builds it, so a page that does
# not build fails CI). Without the serve and watch features: a third of the
# build (measured 2026-12-06: 4 min 42 s wall, 2 min 31 s CPU on two cores).
MDBOOK_VERSION=0.5.4
# Builds the Python guests (guests/python) into components. 0.25.1 bundles
# CPython 3.14 and targets WASI 0.2.x, which wasmtime-wasi 48 provides.
COMPONENTIZE_PY_VERSION=0.25.1
# Builds the JavaScript guests (guests/js); from npm, engine included.
COMPONENTIZE_JS_VERSION=0.23.0
# scripts/check-infra.sh: the Terraform parser and the static scan, each in
# its own virtualenv (checkov pins its own fork of the same `hcl2` module).
PYTHON_HCL2_VERSION=8.1.4
CHECKOV_VERSION=3.3.30
# One virtualenv of Python tools for the tests and benches. The benches'
# Python peers (tests/benches/python/): pyarrow and fastavro
# (cramjam: its snappy codec) for the export and import peers,
# confluent-kafka for the workers against the broker. Wheels only, so the
# install takes seconds.
PYARROW_VERSION=26.0.1
FASTAVRO_VERSION=1.13.1
CRAMJAM_VERSION=2.14.0
CONFLUENT_KAFKA_VERSION=2.16.1
# deltalake: delta-rs's Python package, which reads the exported Delta
# tables back in the tests (another engine than ours).
DELTALAKE_VERSION=1.6.6
# duckdb: reads a time-partitioned export's folders back as a lake's users
# do (tests/python/duckdb_lake.py: every record once, partition pruning).
DUCKDB_VERSION=2.0.0
# The official Prometheus client, whose parser reads our /metrics in tests.
PROMETHEUS_CLIENT_VERSION=0.21.1
# xxhash: the Python enrichment peer derives the same traceparent Sluice
# does (XXH3-128 of the record's coordinates), as a Python worker would.
XXHASH_VERSION=4.1.0
# What compiling Sluice and tansu needs. libzstd-dev: design.md §5, system
# zstd (ZSTD_SYS_USE_PKG_CONFIG=1) cuts cold builds.
BUILD_PACKAGES=(build-essential pkg-config libssl-dev zlib1g-dev cmake libzstd-dev)
# What only the tests need. chromium: the web page is tested in headless
# Chromium. python3-venv: cargo-lambda, componentize-py and the Python tools
# come from PyPI into virtualenvs.
TEST_PACKAGES=(chromium python3-venv)

log() { printf 'setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# "95 s" -> "1 min 35 s"
duration() {
  if (($1 >= 60)); then
    printf '%d min %d s' $(($1 / 60)) $(($1 % 60))
  else
    printf '%d s' "$1"
  fi
}

# One lock for the whole run: two setups at once (parallel CI steps, a second
# terminal) would otherwise compile tansu twice or corrupt an npm prefix.
# Uncontended, flock costs nothing, so the fast path stays fast.
take_lock() {
  mkdir -p "$SLUICE_CACHE"
  exec 9>"$SLUICE_CACHE/setup.lock"
  if ! flock -n 9; then
    log "another setup is running; waiting for it"
    flock 9
  fi
}

wasm_target_ok() {
  rustup target list --installed | grep -qx wasm32-wasip2
}

ensure_wasm_target() {
  rustup target add wasm32-wasip2 >&2
}

apt_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# apt_missing PACKAGE...: prints those not installed, one a line.
apt_missing() {
  local pkg
  for pkg in "$@"; do
    apt_installed "$pkg" || printf '%s\n' "$pkg"
  done
}

apt_install() {
  local missing
  mapfile -t missing < <(apt_missing "$@")
  if ((${#missing[@]} == 0)); then
    return
  fi
  # CI runners are not root but have passwordless sudo; `env` carries
  # DEBIAN_FRONTEND through sudo so no debconf prompt can block.
  local as_root=()
  if ((EUID != 0)); then
    as_root=(sudo -n)
  fi
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq "${missing[@]}" >&2
}

# The version alone is not enough: a plain `cargo install tansu` lacks the
# libsql feature and silently stores nothing (design.md §5). `tansu --help`
# lists the compiled-in storage engines.
tansu_ok() {
  local tansu="$CARGO_BIN/tansu"
  [[ -x "$tansu" ]] || return 1
  "$tansu" --version 2>/dev/null | grep -qwF "$TANSU_VERSION" || return 1
  "$tansu" --help 2>/dev/null | grep -q '^Storage engines:.*libsql'
}

ensure_tansu() {
  # Cargo's progress bar on a terminal; elsewhere (CI, a log file) only
  # warnings and errors instead of ~550 `Compiling` lines.
  local quiet=()
  [[ -t 2 ]] || quiet=(--quiet)
  # --force: we only get here when the installed binary is wrong or missing,
  # and cargo would otherwise keep a same-version install built without libsql.
  # --root: where tansu_ok looks, whatever cargo's own configuration says.
  env "${TANSU_BUILD_ENV[@]}" cargo install "tansu@$TANSU_VERSION" --locked --force \
    "${quiet[@]}" "${TANSU_BUILD_CONFIG[@]}" --features dynostore,libsql \
    --root "${CARGO_BIN%/bin}" --target-dir "$SLUICE_CACHE/tansu-target" >&2
  tansu_ok || die "tansu $TANSU_VERSION with libsql not found in $CARGO_BIN after install"
}

cargo_fuzz_ok() {
  "$CARGO_BIN/cargo-fuzz" --version 2>/dev/null | grep -qwF "$CARGO_FUZZ_VERSION"
}

ensure_cargo_fuzz() {
  local quiet=()
  [[ -t 2 ]] || quiet=(--quiet)
  cargo install "cargo-fuzz@$CARGO_FUZZ_VERSION" --locked --force "${quiet[@]}" \
    --root "${CARGO_BIN%/bin}" --target-dir "$SLUICE_CACHE/cargo-fuzz-target" >&2
  cargo_fuzz_ok || die "cargo-fuzz $CARGO_FUZZ_VERSION not found in $CARGO_BIN after install"
}

mdbook_ok() {
  # `mdbook v0.5.4`: the `v` makes a whole-word match fail.
  "$CARGO_BIN/mdbook" --version 2>/dev/null | grep -qF "mdbook v$MDBOOK_VERSION"
}

ensure_mdbook() {
  local quiet=()
  [[ -t 2 ]] || quiet=(--quiet)
  cargo install "mdbook@$MDBOOK_VERSION" --locked --force --no-default-features \
    --features search "${quiet[@]}" \
    --root "${CARGO_BIN%/bin}" --target-dir "$SLUICE_CACHE/mdbook-target" >&2
  mdbook_ok || die "mdbook $MDBOOK_VERSION not found in $CARGO_BIN after install"
}

need_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    die "node and npm are needed for Azurite (Node 18-20 works with azurite@$AZURITE_VERSION)"
  fi
}

# npm_install PREFIX PACKAGE@VERSION
npm_install() {
  mkdir -p "$1"
  npm install --prefix "$1" "$2" --no-audit --no-fund --no-progress --loglevel=error >&2
}

azurite_ok() {
  local manifest="$SLUICE_CACHE/azurite/node_modules/azurite/package.json"
  [[ -f "$manifest" ]] &&
    node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
      "$manifest" "$AZURITE_VERSION" 2>/dev/null
}

ensure_azurite() {
  need_node
  npm_install "$SLUICE_CACHE/azurite" "azurite@$AZURITE_VERSION"
  azurite_ok || die "azurite $AZURITE_VERSION not found after npm install"
}

cargo_lambda_ok() {
  local bin="$SLUICE_CACHE/cargo-lambda/bin/cargo-lambda"
  [[ -x "$bin" ]] && "$bin" lambda --version 2>/dev/null | grep -qwF "$CARGO_LAMBDA_VERSION"
}

# pip_venv DIR PIP-ARGS...: DIR made anew as a virtualenv with PIP-ARGS installed.
pip_venv() {
  local venv=$1
  shift
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
}

ensure_cargo_lambda() {
  pip_venv "$SLUICE_CACHE/cargo-lambda" "cargo-lambda==$CARGO_LAMBDA_VERSION"
  cargo_lambda_ok || die "cargo-lambda $CARGO_LAMBDA_VERSION not found after pip install"
}

componentize_py_ok() {
  local bin="$SLUICE_CACHE/componentize-py/bin/componentize-py"
  [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -qwF "$COMPONENTIZE_PY_VERSION"
}

ensure_componentize_py() {
  pip_venv "$SLUICE_CACHE/componentize-py" "componentize-py==$COMPONENTIZE_PY_VERSION"
  componentize_py_ok || die "componentize-py $COMPONENTIZE_PY_VERSION not found after pip install"
}

componentize_js_ok() {
  local manifest="$SLUICE_CACHE/componentize-js/node_modules/@bytecodealliance/componentize-js/package.json"
  [[ -f "$manifest" ]] &&
    node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
      "$manifest" "$COMPONENTIZE_JS_VERSION" 2>/dev/null
}

ensure_componentize_js() {
  need_node
  npm_install "$SLUICE_CACHE/componentize-js" \
    "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION"
  componentize_js_ok || die "componentize-js $COMPONENTIZE_JS_VERSION not found after npm install"
}

# pip_version VENV PACKAGE: the version of PACKAGE installed in VENV, if any.
pip_version() {
  "$1/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' \
    "$2" 2>/dev/null
}

# $SLUICE_CACHE/infra-tools/NAME holds PACKAGE==VERSION for scripts/check-infra.sh.
# Reading the installed version is fast; running the tools is not (checkov
# takes seconds to start).
INFRA_TOOLS=("hcl2 python-hcl2 $PYTHON_HCL2_VERSION" "checkov checkov $CHECKOV_VERSION")

infra_tools_ok() {
  local tool name package version
  for tool in "${INFRA_TOOLS[@]}"; do
    read -r name package version <<<"$tool"
    [[ "$(pip_version "$SLUICE_CACHE/infra-tools/$name" "$package")" == "$version" ]] || return 1
  done
}

# Under a lock of its own, so that `setup.sh infra-tools` need not wait for
# a whole setup (a tansu build) to finish, nor race one.
ensure_infra_tools() {
  (
    exec 8>"$SLUICE_CACHE/infra-tools.lock"
    flock 8
    local tool name package version venv
    for tool in "${INFRA_TOOLS[@]}"; do
      read -r name package version <<<"$tool"
      venv="$SLUICE_CACHE/infra-tools/$name"
      [[ "$(pip_version "$venv" "$package")" == "$version" ]] && continue
      pip_venv "$venv" "$package==$version"
      [[ "$(pip_version "$venv" "$package")" == "$version" ]] ||
        die "$package $version not found in $venv after pip install"
    done
  )
}

# $SLUICE_CACHE/pytools: one virtualenv with every Python tool's package at
# their pinned versions, made anew when any differs (one Python start to
# check them all keeps the fast path fast). Under a lock of its own, like
# the infra tools.
PYTHON_TOOLS=("pyarrow==$PYARROW_VERSION" "fastavro==$FASTAVRO_VERSION"
  "cramjam==$CRAMJAM_VERSION" "confluent-kafka==$CONFLUENT_KAFKA_VERSION"
  "prometheus-client==$PROMETHEUS_CLIENT_VERSION" "deltalake==$DELTALAKE_VERSION"
  "duckdb==$DUCKDB_VERSION" "xxhash==$XXHASH_VERSION")

python_tools_ok() {
  [[ "$("$SLUICE_CACHE/pytools/bin/python" -c 'import importlib.metadata as m, sys
print(" ".join(p + "==" + m.version(p) for p in sys.argv[1:]))' \
    "${PYTHON_TOOLS[@]%%==*}" 2>/dev/null)" == "${PYTHON_TOOLS[*]}" ]]
}

ensure_python_tools() {
  (
    exec 7>"$SLUICE_CACHE/pytools.lock"
    flock 7
    python_tools_ok && exit 0
    pip_venv "$SLUICE_CACHE/pytools" --only-binary :all: "${PYTHON_TOOLS[@]}"
    python_tools_ok || die "${PYTHON_TOOLS[*]} not all found in $SLUICE_CACHE/pytools after pip install"
  )
}

# --- steps -------------------------------------------------------------------
# Each step has a check (step_ok), an install (step_run), what it does and
# how long it usually takes from scratch (announce), and a short name for
# the closing timings (label). The durations: two cores, a fast network.

step_ok() {
  case "$1" in
    wasm) wasm_target_ok ;;
    build-packages) [[ -z "$(apt_missing "${BUILD_PACKAGES[@]}")" ]] ;;
    test-packages) [[ -z "$(apt_missing "${TEST_PACKAGES[@]}")" ]] ;;
    tansu) tansu_ok ;;
    cargo-fuzz) cargo_fuzz_ok ;;
    mdbook) mdbook_ok ;;
    tansu-survey) tansu_survey_ok ;;
    azurite) azurite_ok ;;
    cargo-lambda) cargo_lambda_ok ;;
    componentize-py) componentize_py_ok ;;
    componentize-js) componentize_js_ok ;;
    infra-tools) infra_tools_ok ;;
    python-tools) python_tools_ok ;;
  esac
}

step_run() {
  case "$1" in
    wasm) ensure_wasm_target ;;
    build-packages) apt_install "${BUILD_PACKAGES[@]}" ;;
    test-packages) apt_install "${TEST_PACKAGES[@]}" ;;
    tansu) ensure_tansu ;;
    cargo-fuzz) ensure_cargo_fuzz ;;
    mdbook) ensure_mdbook ;;
    tansu-survey) ensure_tansu_survey ;;
    azurite) ensure_azurite ;;
    cargo-lambda) ensure_cargo_lambda ;;
    componentize-py) ensure_componentize_py ;;
    componentize-js) ensure_componentize_js ;;
    infra-tools) ensure_infra_tools ;;
    python-tools) ensure_python_tools ;;
  esac
}

# A second tansu build with the turso engine too, for scripts/broker-survey.sh
# only (the tests and the demo use the one above): its own root, so the
# broker everything else starts is never replaced.
TANSU_SURVEY_ROOT="$SLUICE_CACHE/tansu-survey"
tansu_survey_ok() {
  "$TANSU_SURVEY_ROOT/bin/tansu" --help 2>/dev/null | grep -q '^Storage engines:.*turso'
}

ensure_tansu_survey() {
  env "${TANSU_BUILD_ENV[@]}" cargo install "tansu@$TANSU_VERSION" --locked --force --quiet \
    "${TANSU_BUILD_CONFIG[@]}" --features dynostore,libsql,turso \
    --root "$TANSU_SURVEY_ROOT" --target-dir "$SLUICE_CACHE/tansu-target" >&2
  tansu_survey_ok || die "tansu with turso not found in $TANSU_SURVEY_ROOT after install"
}

label() {
  case "$1" in
    wasm) echo "rust target wasm32-wasip2" ;;
    build-packages) echo "apt build packages" ;;
    test-packages) echo "apt packages for the tests" ;;
    tansu) echo "tansu build" ;;
    tansu-survey) echo "tansu build with turso" ;;
    *) echo "$1" ;;
  esac
}

announce() {
  local bg="in the background"
  case "$1" in
    wasm) log "adding the rust target wasm32-wasip2 (about 20 s, $bg)" ;;
    build-packages)
      log "installing apt packages to compile C code: $(apt_missing "${BUILD_PACKAGES[@]}" | xargs) (about 1 min)" ;;
    test-packages)
      log "installing apt packages for the tests: $(apt_missing "${TEST_PACKAGES[@]}" | xargs) (about 2 min, $bg)" ;;
    tansu)
      log "building the tansu $TANSU_VERSION broker from source into $CARGO_BIN ($TANSU_ETA on two cores; build folder $SLUICE_CACHE/tansu-target)" ;;
    cargo-fuzz)
      log "building cargo-fuzz $CARGO_FUZZ_VERSION from crates.io into $CARGO_BIN (about 1 min on two cores)" ;;
    mdbook)
      log "building mdBook $MDBOOK_VERSION from crates.io into $CARGO_BIN (about 3-5 min on two cores)" ;;
    tansu-survey)
      log "building tansu $TANSU_VERSION with the turso engine into $TANSU_SURVEY_ROOT for the broker survey (about 6 min on two cores, reusing the tansu build folder)" ;;
    azurite) log "installing Azurite $AZURITE_VERSION from npm into $SLUICE_CACHE/azurite (about 15 s, $bg)" ;;
    cargo-lambda) log "installing cargo-lambda $CARGO_LAMBDA_VERSION from PyPI (about 10 s, $bg)" ;;
    componentize-py) log "installing componentize-py $COMPONENTIZE_PY_VERSION from PyPI (about 10 s, $bg)" ;;
    componentize-js) log "installing componentize-js $COMPONENTIZE_JS_VERSION from npm (about 15 s, $bg)" ;;
    infra-tools) log "installing python-hcl2 and checkov from PyPI into $SLUICE_CACHE/infra-tools (about 40 s, $bg)" ;;
    python-tools) log "installing the tests' Python tools (pyarrow, deltalake, ...) from PyPI into $SLUICE_CACHE/pytools (about 15 s, $bg)" ;;
  esac
}

# run_step STEP: runs it and appends "STEP SECONDS" to $SETUP_TIMES_FILE.
run_step() {
  local started=$SECONDS
  step_run "$1"
  printf '%s %d\n' "$1" $((SECONDS - started)) >>"$SETUP_TIMES_FILE"
}

# The steps of a profile, in the order they are announced.
profile_steps() {
  case "$1" in
    test) echo wasm build-packages tansu cargo-fuzz mdbook azurite componentize-js test-packages \
      cargo-lambda componentize-py infra-tools python-tools ;;
    demo) echo wasm build-packages tansu azurite ;;
    services) echo build-packages tansu azurite ;;
    build-tools) echo wasm build-packages ;;
    infra-tools) echo infra-tools ;;
    python-tools | delta-tools) echo python-tools ;;
    broker-survey) echo build-packages tansu tansu-survey python-tools ;;
    fuzz) echo build-packages cargo-fuzz ;;
    docs) echo mdbook ;;
    *) return 1 ;;
  esac
}

# Background lanes: downloads that wait on nothing but each other, so they
# run while cargo compiles. A lane is this script again (`_lane STEP...`) in
# a session of its own, so that a failed or interrupted setup can stop it
# and whatever it started; its output goes to $LOGS/setup-NAME.log.
LANE_PIDS=()
LANE_NAMES=()

start_lane() {
  local name=$1 steps=()
  shift
  local step
  for step in "$@"; do
    [[ " ${MISSING[*]} " == *" $step "* ]] && steps+=("$step")
  done
  ((${#steps[@]} > 0)) || return 0
  mkdir -p "$LOGS"
  setsid "$HERE/setup.sh" _lane "${steps[@]}" </dev/null >"$LOGS/setup-$name.log" 2>&1 &
  LANE_PIDS+=("$!")
  LANE_NAMES+=("$name")
}

stop_lanes() {
  local pid
  for pid in "${LANE_PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
}

wait_lanes() {
  local i failed=0
  for i in "${!LANE_PIDS[@]}"; do
    if ! wait "${LANE_PIDS[$i]}"; then
      log "error: ${LANE_NAMES[$i]} failed; last lines of $LOGS/setup-${LANE_NAMES[$i]}.log:"
      tail -n 20 "$LOGS/setup-${LANE_NAMES[$i]}.log" >&2 || true
      failed=1
    fi
  done
  LANE_PIDS=()
  ((failed == 0)) || die "setup did not finish; run it again once the cause is fixed"
}

# In the order the steps were announced.
print_times() {
  local step name secs line
  for step in "${MISSING[@]}"; do
    while read -r name secs; do
      [[ "$name" == "$step" ]] || continue
      line="setup: $(label "$step") took $(duration "$secs")"
      if [[ -n "${SLUICE_TIMES:-}" ]]; then
        printf '%s\n' "$line" >>"$SLUICE_TIMES"
      else
        printf '%s\n' "$line" >&2
      fi
    done <"$SETUP_TIMES_FILE"
  done
}

main() {
  local profile="${1:-test}" steps step
  if [[ "$profile" == _lane ]]; then
    shift
    for step in "$@"; do run_step "$step"; done
    return
  fi
  steps="$(profile_steps "$profile")" ||
    die "usage: $0 [test|demo|services|build-tools|infra-tools|python-tools|fuzz|docs]"
  mkdir -p "$SLUICE_CACHE"
  # The infra and Python tools have locks of their own (a test run asks for
  # them while another setup may be compiling tansu).
  if [[ "$profile" != infra-tools && "$profile" != python-tools && "$profile" != delta-tools ]]; then
    take_lock
  fi
  MISSING=()
  for step in $steps; do
    step_ok "$step" || MISSING+=("$step")
  done
  ((${#MISSING[@]} > 0)) || return 0
  for step in "${MISSING[@]}"; do announce "$step"; done

  export SETUP_TIMES_FILE
  SETUP_TIMES_FILE="$(mktemp)"
  trap 'stop_lanes; rm -f "$SETUP_TIMES_FILE"' EXIT
  # A signal ends the run through the EXIT trap, which stops the lanes.
  trap 'exit 143' TERM
  trap 'exit 130' INT
  # rustup and npm need nothing from apt; pip needs python3-venv, and apt
  # takes one install at a time, so the tests' packages go after the build
  # packages, and the PyPI installs after them. The build packages come
  # first and in the foreground: cargo's build scripts need the C compiler.
  start_lane rustup wasm
  start_lane npm azurite componentize-js
  if [[ " ${MISSING[*]} " == *" build-packages "* ]]; then
    run_step build-packages
  fi
  start_lane pypi test-packages cargo-lambda componentize-py infra-tools python-tools
  if [[ " ${MISSING[*]} " == *" tansu "* ]]; then
    run_step tansu
  fi
  if [[ " ${MISSING[*]} " == *" cargo-fuzz "* ]]; then
    run_step cargo-fuzz
  fi
  if [[ " ${MISSING[*]} " == *" mdbook "* ]]; then
    run_step mdbook
  fi
  if [[ " ${MISSING[*]} " == *" tansu-survey "* ]]; then
    run_step tansu-survey
  fi
  if ((${#LANE_PIDS[@]} > 0)); then
    wait_lanes
  fi
  print_times
}

main "$@"
