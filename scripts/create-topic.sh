#!/usr/bin/env bash
# Creates a topic on the local tansu broker (scripts/services.sh up).
# Usage: create-topic.sh NAME [PARTITIONS]   (PARTITIONS defaults to 3)
# A topic that already exists counts as success, so tests and CI steps can
# call this repeatedly. The partition count of an existing topic is not
# checked; tests use fresh topic names (design.md §5).
set -euo pipefail

TANSU="${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
BROKER="tcp://127.0.0.1:${SLUICE_KAFKA_PORT:-9092}"

usage() {
  echo "usage: $0 NAME [PARTITIONS]" >&2
  exit 2
}

main() {
  (($# >= 1 && $# <= 2)) || usage
  local name="$1" partitions="${2:-3}" out
  [[ -n "$name" && "$partitions" =~ ^[1-9][0-9]*$ ]] || usage
  # tansu exits 1 for any Kafka error code and reports which one only in an
  # ERROR log line, which RUST_LOG=off (or a stray filter) would hide.
  if out="$(RUST_LOG=error "$TANSU" topic create --broker "$BROKER" \
    --partitions "$partitions" "$name" 2>&1)"; then
    echo "created topic $name ($partitions partitions)"
  elif grep -qi 'already exists' <<<"$out"; then
    echo "topic $name already exists"
  else
    printf '%s\n' "$out" >&2
    echo "create-topic: failed to create $name on $BROKER" >&2
    exit 1
  fi
}

main "$@"
