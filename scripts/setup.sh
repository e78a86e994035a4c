#!/usr/bin/env bash
# Installs what building and testing Sluice needs: the wasm target, C build
# tools (rdkafka bundles librdkafka and compiles it), the tansu broker,
# Azurite, the infra/ checkers and the benches' Python peers. Idempotent and
# non-interactive; a run with everything present takes well under a second,
# so services.sh calls it on every `up`.
set -euo pipefail

SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
TANSU_VERSION=0.6.0
# Newer Azurite releases need Node >= 21.
AZURITE_VERSION=3.35.0
# The Lambda Runtime API emulator (`cargo lambda watch`) the Lambda test runs under.
CARGO_LAMBDA_VERSION=1.9.2
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
# The official Prometheus client, whose parser reads our /metrics in tests.
PROMETHEUS_CLIENT_VERSION=0.21.1
# libzstd-dev: design.md §5, system zstd (ZSTD_SYS_USE_PKG_CONFIG=1) cuts cold builds.
# chromium: the web page is tested in headless Chromium.
# python3-venv: cargo-lambda and componentize-py come from PyPI into virtualenvs.
APT_PACKAGES=(build-essential pkg-config libssl-dev zlib1g-dev cmake libzstd-dev chromium
  python3-venv)

log() { printf 'setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

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

ensure_wasm_target() {
  if rustup target list --installed | grep -qx wasm32-wasip2; then
    return
  fi
  log "adding rust target wasm32-wasip2"
  rustup target add wasm32-wasip2 >&2
}

apt_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

ensure_apt_packages() {
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    apt_installed "$pkg" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    return
  fi
  log "installing apt packages: ${missing[*]}"
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
  if tansu_ok; then
    return
  fi
  log "building tansu $TANSU_VERSION (15-25 min cold; cached in $SLUICE_CACHE/tansu-target)"
  # --force: we only get here when the installed binary is wrong or missing,
  # and cargo would otherwise keep a same-version install built without libsql.
  cargo install "tansu@$TANSU_VERSION" --locked --force \
    --features dynostore,libsql \
    --target-dir "$SLUICE_CACHE/tansu-target" >&2
  tansu_ok || die "tansu $TANSU_VERSION with libsql not found in $CARGO_BIN after install"
}

azurite_ok() {
  local manifest="$SLUICE_CACHE/azurite/node_modules/azurite/package.json"
  [[ -f "$manifest" ]] &&
    node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
      "$manifest" "$AZURITE_VERSION"
}

ensure_azurite() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    die "node and npm are needed for Azurite (Node 18-20 works with azurite@$AZURITE_VERSION)"
  fi
  if azurite_ok; then
    return
  fi
  log "installing azurite@$AZURITE_VERSION into $SLUICE_CACHE/azurite"
  mkdir -p "$SLUICE_CACHE/azurite"
  npm install --prefix "$SLUICE_CACHE/azurite" "azurite@$AZURITE_VERSION" \
    --no-audit --no-fund --loglevel=error >&2
  azurite_ok || die "azurite $AZURITE_VERSION not found after npm install"
}

cargo_lambda_ok() {
  local bin="$SLUICE_CACHE/cargo-lambda/bin/cargo-lambda"
  [[ -x "$bin" ]] && "$bin" lambda --version 2>/dev/null | grep -qwF "$CARGO_LAMBDA_VERSION"
}

ensure_cargo_lambda() {
  if cargo_lambda_ok; then
    return
  fi
  log "installing cargo-lambda $CARGO_LAMBDA_VERSION into $SLUICE_CACHE/cargo-lambda"
  rm -rf "$SLUICE_CACHE/cargo-lambda"
  python3 -m venv "$SLUICE_CACHE/cargo-lambda" >&2
  "$SLUICE_CACHE/cargo-lambda/bin/pip" install --quiet --disable-pip-version-check \
    "cargo-lambda==$CARGO_LAMBDA_VERSION" >&2
  cargo_lambda_ok || die "cargo-lambda $CARGO_LAMBDA_VERSION not found after pip install"
}

componentize_py_ok() {
  local bin="$SLUICE_CACHE/componentize-py/bin/componentize-py"
  [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -qwF "$COMPONENTIZE_PY_VERSION"
}

ensure_componentize_py() {
  if componentize_py_ok; then
    return
  fi
  log "installing componentize-py $COMPONENTIZE_PY_VERSION into $SLUICE_CACHE/componentize-py"
  rm -rf "$SLUICE_CACHE/componentize-py"
  python3 -m venv "$SLUICE_CACHE/componentize-py" >&2
  "$SLUICE_CACHE/componentize-py/bin/pip" install --quiet --disable-pip-version-check \
    "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
  componentize_py_ok || die "componentize-py $COMPONENTIZE_PY_VERSION not found after pip install"
}

componentize_js_ok() {
  local manifest="$SLUICE_CACHE/componentize-js/node_modules/@bytecodealliance/componentize-js/package.json"
  [[ -f "$manifest" ]] &&
    node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
      "$manifest" "$COMPONENTIZE_JS_VERSION"
}

ensure_componentize_js() {
  if componentize_js_ok; then
    return
  fi
  log "installing componentize-js $COMPONENTIZE_JS_VERSION into $SLUICE_CACHE/componentize-js"
  mkdir -p "$SLUICE_CACHE/componentize-js"
  npm install --prefix "$SLUICE_CACHE/componentize-js" \
    "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" \
    --no-audit --no-fund --loglevel=error >&2
  componentize_js_ok || die "componentize-js $COMPONENTIZE_JS_VERSION not found after npm install"
}

# pip_version VENV PACKAGE: the version of PACKAGE installed in VENV, if any.
pip_version() {
  "$1/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' \
    "$2" 2>/dev/null
}

# pip_tool NAME PACKAGE VERSION: $SLUICE_CACHE/infra-tools/NAME holds
# PACKAGE==VERSION, or is made anew with it. Reading the installed version
# is fast; running the tools is not (checkov takes seconds to start).
pip_tool() {
  local venv="$SLUICE_CACHE/infra-tools/$1" package=$2 version=$3
  if [[ "$(pip_version "$venv" "$package")" == "$version" ]]; then
    return
  fi
  log "installing $package $version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version" >&2
  [[ "$(pip_version "$venv" "$package")" == "$version" ]] ||
    die "$package $version not found in $venv after pip install"
}

# Under a lock of its own, so that `setup.sh infra-tools` need not wait for
# a whole setup (a tansu build) to finish, nor race one.
ensure_infra_tools() {
  (
    exec 8>"$SLUICE_CACHE/infra-tools.lock"
    flock 8
    pip_tool hcl2 python-hcl2 "$PYTHON_HCL2_VERSION"
    pip_tool checkov checkov "$CHECKOV_VERSION"
  )
}

# $SLUICE_CACHE/pytools: one virtualenv with every Python tool's package at
# their pinned versions, made anew when any differs (one Python start to
# check them all keeps the fast path fast). Under a lock of its own, like
# the infra tools.
ensure_python_tools() {
  (
    exec 7>"$SLUICE_CACHE/pytools.lock"
    flock 7
    local venv="$SLUICE_CACHE/pytools"
    local pins=("pyarrow==$PYARROW_VERSION" "fastavro==$FASTAVRO_VERSION"
      "cramjam==$CRAMJAM_VERSION" "confluent-kafka==$CONFLUENT_KAFKA_VERSION"
      "prometheus-client==$PROMETHEUS_CLIENT_VERSION" "deltalake==$DELTALAKE_VERSION")
    installed() {
      "$venv/bin/python" -c 'import importlib.metadata as m, sys
print(" ".join(p + "==" + m.version(p) for p in sys.argv[1:]))' \
        "${pins[@]%%==*}" 2>/dev/null
    }
    if [[ "$(installed)" == "${pins[*]}" ]]; then
      return
    fi
    log "installing ${pins[*]} into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: \
      "${pins[@]}" >&2
    [[ "$(installed)" == "${pins[*]}" ]] || die "${pins[*]} not all found in $venv after pip install"
  )
}

main() {
  # npm and cargo skip progress bars and prompts under CI.
  export CI="${CI:-true}"
  mkdir -p "$SLUICE_CACHE"
  # `setup.sh infra-tools`: only what scripts/check-infra.sh needs (a
  # python3 with venv; on Debian's own python3, the full setup's
  # python3-venv).
  if [[ "${1:-}" == infra-tools ]]; then
    ensure_infra_tools
    return
  fi
  # `setup.sh python-tools`: only the tests' and benches' Python tools.
  if [[ "${1:-}" == python-tools || "${1:-}" == delta-tools ]]; then
    ensure_python_tools
    return
  fi
  take_lock
  ensure_wasm_target
  ensure_apt_packages
  ensure_tansu
  ensure_azurite
  ensure_cargo_lambda
  ensure_componentize_py
  ensure_componentize_js
  ensure_infra_tools
  ensure_python_tools
}

main "$@"
