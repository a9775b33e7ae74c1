#!/usr/bin/env bash
# The built-in demo: sets up and builds uffdlazy, then runs the demo program (a 256 MiB in-memory
# index) without and with the shim, and shows what the shim served.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
build_dir=${UFFDLAZY_BUILD_DIR:-build}
bin="$build_dir/bin"

echo "== without the shim"
"$bin/uffdlazy-demo-index"
echo
echo "== under uffdlazy (every first touch of the index is served by the shim's monitor)"
"$bin/uffdlazy" run --stats -- "$bin/uffdlazy-demo-index"
echo
echo "== the same with fault-around off (one round trip to the monitor per page)"
UFFDLAZY_FAULT_AROUND=1 "$bin/uffdlazy" run --stats -- "$bin/uffdlazy-demo-index"
