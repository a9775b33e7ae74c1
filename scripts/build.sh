#!/usr/bin/env bash
# Configures and builds uffdlazy into ./build (Release with debug info). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${UFFDLAZY_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
