#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build_dir=${UFFDLAZY_BUILD_DIR:-build}
ctest --test-dir "$build_dir" --output-on-failure --timeout 600 -j2
