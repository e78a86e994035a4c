#!/usr/bin/env bash
# Real services for Sluice's tests and demo: tansu (Kafka protocol, sqlite
# storage) and Azurite (Blob API). Usage: services.sh up|down|status
#
# `up` prints only `export NAME=value` lines on stdout (progress goes to
# stderr), so a caller can do:  eval "$(scripts/services.sh up)"
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$HERE/env.sh"
SLUICE_STATE="${SLUICE_STATE:-$SLUICE_CACHE/run}"
KAFKA_PORT="${SLUICE_KAFKA_PORT:-9092}"
AZURITE_PORT="${SLUICE_AZURITE_PORT:-10000}"
TANSU="$SLUICE_CARGO_BIN/tansu"
AZURITE_MAIN="$SLUICE_CACHE/azurite/node_modules/azurite/dist/src/blob/main.js"
START_TIMEOUT="${SLUICE_START_TIMEOUT:-60}"
STOP_TIMEOUT=15
SERVICES=(tansu azurite)

# Azurite's fixed, publicly documented development account.
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

port_of() {
  case "$1" in
    tansu) echo "$KAFKA_PORT" ;;
    azurite) echo "$AZURITE_PORT" ;;
  esac
}

port_var_of() {
  case "$1" in
    tansu) echo SLUICE_KAFKA_PORT ;;
    azurite) echo SLUICE_AZURITE_PORT ;;
  esac
}

# A connect to a local port either succeeds or is refused at once; the
# timeout only guards against a wedged listener.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Prints the pid recorded for a service if that process is still alive and
# still is that service (pids get reused after a reboot or a long uptime).
live_pid() {
  local file="$SLUICE_STATE/$1.pid" pid
  [[ -f "$file" ]] || return 1
  pid="$(<"$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  grep -qa "$1" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

# Answers a real request, not just a TCP accept: a Metadata call for tansu,
# any HTTP status for Azurite (an unsigned list request gets 403, which is fine).
healthy() {
  case "$1" in
    tansu)
      timeout 5 "$TANSU" topic list --broker "tcp://127.0.0.1:$KAFKA_PORT" \
        >/dev/null 2>&1 ;;
    azurite)
      local code
      code="$(curl -s -m 2 -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT?comp=list" || true)"
      [[ "$code" != 000 && -n "$code" ]] ;;
  esac
}

# The command line of each service, as an array in the global CMD.
service_cmd() {
  case "$1" in
    tansu)
      # tansu resolves sqlite:// paths against its working directory (even
      # sqlite:///abs/path) and reads a .env from it: launch() runs it in
      # the state dir, so the database is $SLUICE_STATE/tansu.db.
      # NO_COLOR: tansu's log lines carry ANSI colours even into a file.
      CMD=(env "RUST_LOG=${SLUICE_TANSU_LOG:-warn}" NO_COLOR=1 "$TANSU" broker
        --listener-url "tcp://127.0.0.1:$KAFKA_PORT"
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT"
        --storage-engine "sqlite://tansu.db") ;;
    azurite)
      # --disableTelemetry stops it phoning home. Not --location: Azurite
      # rejects it next to --inMemoryPersistence; the cwd is the state dir.
      CMD=(node "$AZURITE_MAIN" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT"
        --inMemoryPersistence --skipApiVersionCheck --loose --disableTelemetry) ;;
  esac
}

# A long-lived service must not keep the caller's descriptors open: fd 8
# (the services lock) would block every later up/down, and a caller's pipe
# (`$(services.sh up)`, `| tee` in CI) would never see end-of-file.
close_inherited_fds() {
  local fd
  for fd in /proc/self/fd/*; do
    fd="${fd##*/}"
    if ((fd > 2)); then
      exec {fd}>&-
    fi
  done 2>/dev/null
}

# setsid puts the service in its own session, so it outlives the calling
# shell and its terminal, and a Ctrl-C there does not reach it. Each exec
# keeps the pid, so $! is the service's pid.
launch() {
  local name="$1" log="$SLUICE_STATE/$1.log"
  service_cmd "$name"
  # Keep the previous run's log: it explains a crash we are restarting after.
  if [[ -f "$log" ]]; then
    mv -f "$log" "$log.1"
  fi
  (
    close_inherited_fds
    cd "$SLUICE_STATE"
    exec setsid nohup "${CMD[@]}" </dev/null >"$log" 2>&1
  ) &
  echo "$!" >"$SLUICE_STATE/$name.pid"
}

fail_start() {
  local name="$1" why="$2"
  log "$name $why; last lines of $SLUICE_STATE/$name.log:"
  tail -n 30 "$SLUICE_STATE/$name.log" >&2 || true
  exit 1
}

wait_ready() {
  local name="$1" deadline=$((SECONDS + START_TIMEOUT)) pid
  pid="$(<"$SLUICE_STATE/$name.pid")"
  until port_open "$(port_of "$name")" && healthy "$name"; do
    # Plain kill -0, not live_pid: right after launch the pid may still be
    # setsid or nohup on its way to exec'ing the service.
    kill -0 "$pid" 2>/dev/null || fail_start "$name" "exited during startup"
    ((SECONDS < deadline)) ||
      fail_start "$name" "did not answer on port $(port_of "$name") within ${START_TIMEOUT}s"
    sleep 0.2
  done
}

start() {
  local name="$1" port
  port="$(port_of "$name")"
  if live_pid "$name" >/dev/null; then
    # Ours and alive: maybe still starting (a concurrent or earlier `up`).
    wait_ready "$name"
    log "$name already running (pid $(live_pid "$name"), port $port)"
    return
  fi
  if port_open "$port"; then
    die "port $port is taken by a process this script did not start; stop it or set $(port_var_of "$name")"
  fi
  log "starting $name on 127.0.0.1:$port (log: $SLUICE_STATE/$name.log)"
  launch "$name"
  wait_ready "$name"
  log "$name ready (pid $(live_pid "$name"))"
}

stop() {
  local name="$1" pid port deadline
  port="$(port_of "$name")"
  if ! pid="$(live_pid "$name")"; then
    rm -f "$SLUICE_STATE/$name.pid"
    if port_open "$port"; then
      log "$name: port $port is open but not by a process this script started; left alone"
    else
      log "$name not running"
    fi
    return
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null || port_open "$port"; do
    if ((SECONDS >= deadline)); then
      log "$name ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + STOP_TIMEOUT))
    fi
    sleep 0.2
  done
  rm -f "$SLUICE_STATE/$name.pid"
}

print_exports() {
  cat <<EOF
export SLUICE_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export SLUICE_AZURITE_BLOB=http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT
export SLUICE_AZURITE_ACCOUNT=$AZURITE_ACCOUNT
export SLUICE_AZURITE_KEY=$AZURITE_KEY
EOF
}

# up and down hold a lock so two callers never start the same service twice.
lock_state() {
  mkdir -p "$SLUICE_STATE"
  exec 8>"$SLUICE_STATE/services.lock"
  flock 8
}

# tansu 0.6.0's sqlite schema has no index on header(topition, offset_id),
# and its fetch looks up each record's headers: every fetched record scans
# the whole header table, so reads slow down as the broker's history grows
# (measured here: 12 s for one fetch of 3,300 records with 50,000 headers
# stored; 0.5 s for 10,000 records with the index). The broker creates its
# tables at start, so the index goes in once it answers; it is idempotent.
index_tansu_headers() {
  python3 - "$SLUICE_STATE/tansu.db" <<'PY' || die "could not index tansu's header table"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
db.execute("create index if not exists sluice_header_record on header (topition, offset_id)")
db.commit()
PY
}

cmd_up() {
  # Only what the services need (tansu, Azurite): the demo's and the tests'
  # entry points run their own, larger setups first.
  "$HERE/setup.sh" services >&2
  lock_state
  local name
  for name in "${SERVICES[@]}"; do
    start "$name"
  done
  index_tansu_headers
  print_exports
}

cmd_down() {
  lock_state
  local name
  for name in "${SERVICES[@]}"; do
    stop "$name"
  done
}

# Exit status 0 only when every service runs and answers.
cmd_status() {
  local name pid port rc=0
  for name in "${SERVICES[@]}"; do
    port="$(port_of "$name")"
    pid=""
    if pid="$(live_pid "$name")" && port_open "$port" && healthy "$name"; then
      echo "$name: running (pid $pid, 127.0.0.1:$port)"
    elif [[ -n "$pid" ]]; then
      echo "$name: starting or unhealthy (pid $pid, 127.0.0.1:$port)"
      rc=1
    elif port_open "$port"; then
      echo "$name: not ours, but port $port is in use"
      rc=1
    else
      echo "$name: stopped"
      rc=1
    fi
  done
  return "$rc"
}

main() {
  [[ "$KAFKA_PORT" =~ ^[0-9]+$ && "$AZURITE_PORT" =~ ^[0-9]+$ ]] ||
    die "SLUICE_KAFKA_PORT and SLUICE_AZURITE_PORT must be numbers"
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
  esac
}

main "$@"
