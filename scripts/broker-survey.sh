#!/usr/bin/env bash
# tansu's storage engines side by side: each in a broker of its own on a
# free port and an empty folder, the same job against each
# (tests/benches/python/broker_survey.py: produce without and with headers,
# consume it all back, and the checks Sluice relies on: gapless offsets,
# watermarks, a fetch from inside a batch, a group commit read back).
#
#   scripts/broker-survey.sh [RECORDS [ENGINE...]]   # 50,000 produced twice;
#                                                    # every engine below
#
# Engines: sqlite (what the tests and the demo use, with the header index
# scripts/services.sh adds), sqlite as tansu ships it, memory (dynostore's
# in-memory store) and turso (tansu's Rust rewrite of SQLite). postgres is
# not among them: its schema is not in the published crates, only in
# tansu's repository. The figures are recorded in ARCHITECTURE.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$HERE/env.sh"
RECORDS="${1:-50000}"
shift || true
ENGINES=("$@")

"$HERE/setup.sh" broker-survey
PYTHON="$SLUICE_CACHE/pytools/bin/python"
SURVEY="$HERE/../tests/benches/python/broker_survey.py"
TANSU="$SLUICE_CACHE/tansu-survey/bin/tansu"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

BROKER_PID=
stop_broker() {
  if [[ -n "$BROKER_PID" ]]; then
    kill "$BROKER_PID" 2>/dev/null || true
    # A broker still working through queued fetches ignores the TERM.
    local waited=0
    while kill -0 "$BROKER_PID" 2>/dev/null && ((waited < 50)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=
  fi
}
trap 'stop_broker; rm -rf "$WORK"' EXIT
WORK="$(mktemp -d)"

# run NAME ENGINE_URL [index]: one engine's line of the table.
run() {
  local name=$1 url=$2 index=${3:-} port dir topic
  if ((${#ENGINES[@]} > 0)) && [[ " ${ENGINES[*]} " != *" $name "* ]]; then
    return 0
  fi
  port="$(free_port)"
  dir="$WORK/$name"
  mkdir -p "$dir"
  # tansu resolves sqlite:// and turso:// paths against its working folder.
  (cd "$dir" && exec env RUST_LOG=warn NO_COLOR=1 "$TANSU" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "$url" >"$dir/broker.log" 2>&1) &
  BROKER_PID=$!
  local tries=0
  until timeout 5 "$TANSU" topic list --broker "tcp://127.0.0.1:$port" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if ((tries >= 60)) || ! kill -0 "$BROKER_PID" 2>/dev/null; then
      printf '%-22s the broker did not start: %s\n' "$name" "$(tail -n 1 "$dir/broker.log")"
      BROKER_PID=
      return 0
    fi
    sleep 0.5
  done
  if [[ -n "$index" ]]; then
    python3 - "$dir/tansu.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
db.execute("create index if not exists sluice_header_record on header (topition, offset_id)")
db.commit()
PY
  fi
  topic="survey-$name"
  "$TANSU" topic create --broker "tcp://127.0.0.1:$port" --partitions 3 "$topic" >/dev/null
  local result
  result="$(cd "$(dirname "$SURVEY")" && "$PYTHON" "$SURVEY" \
    "bootstrap=127.0.0.1:$port" "topic=$topic" "records=$RECORDS")" ||
    result='{"problems": ["the survey script failed"]}'
  stop_broker
  "$PYTHON" - "$name" "$result" <<'PY'
import json, sys
name, r = sys.argv[1], json.loads(sys.argv[2])
problems = "; ".join(r.get("problems", [])) or "none"
print(f"{name:<22} {r.get('produce_per_s', 0):>10} {r.get('produce_headers_per_s', 0):>14} "
      f"{r.get('consume_per_s', 0):>10}  {problems}")
PY
}

echo "tansu's storage engines: $RECORDS records of ~300 bytes produced without headers, $RECORDS with two, 3 partitions, all consumed back"
printf '%-22s %10s %14s %10s  %s\n' engine produce/s "with headers/s" consume/s problems
run sqlite+index "sqlite://tansu.db" index
run sqlite "sqlite://tansu.db"
run memory "memory://tansu/"
# Not turso://tansu.db: the turso engine takes the name as a folder.
run turso "turso://./tansu.db"
