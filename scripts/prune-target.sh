#!/usr/bin/env bash
# Removes superseded build outputs of Sluice's own crates from the shared
# cargo target folder: every rebuild of a test binary (~0.5 GB in debug)
# leaves the previous one behind under another hash, and a long-lived cache
# would otherwise fill the disk. Dependencies are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
command -v python3 >/dev/null || exit 0

python3 - "$CARGO_TARGET_DIR" <<'PY'
import collections, os, re, sys

target = sys.argv[1]
ours = {"sluice", "sluice_host", "sluice_tests", "sluice_guest", "stay_rules"}
freed = 0
for profile in ("debug", "release"):
    deps = os.path.join(target, profile, "deps")
    if not os.path.isdir(deps):
        continue
    groups = collections.defaultdict(list)
    for name in os.listdir(deps):
        m = re.match(r"^(lib)?(.+)-([0-9a-f]{16})(\..+)?$", name)
        path = os.path.join(deps, name)
        if not m or not os.path.isfile(path):
            continue
        crate, ext = m.group(2), m.group(4) or ""
        # Test and bench executables (no extension) and our crates' libraries.
        if ext == "" or crate in ours:
            groups[(crate, ext)].append((os.path.getmtime(path), path))
    for files in groups.values():
        files.sort(reverse=True)
        # Two kept: a plain build and a clippy/test build of the same crate
        # can legitimately coexist under different hashes.
        for _, path in files[2:]:
            freed += os.path.getsize(path)
            os.remove(path)
# Compiled guest components the tests cache (tests/src/lib.rs): one per
# component version; versions no run has loaded for two days are gone.
import time
artifacts = os.path.join(target, "test-artifacts")
if os.path.isdir(artifacts):
    for name in os.listdir(artifacts):
        path = os.path.join(artifacts, name)
        if os.path.isfile(path) and time.time() - os.path.getmtime(path) > 2 * 86400:
            freed += os.path.getsize(path)
            os.remove(path)
print(f"prune-target: freed {freed / 1e9:.1f} GB", file=sys.stderr)
PY
