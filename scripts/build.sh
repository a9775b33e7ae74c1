#!/usr/bin/env bash
# Configures and builds uffdlazy into ./build (Release with debug info). Safe to run again.
#
#   scripts/build.sh               everything: the CLI, the shim, the restorer, the manual, the tests
#                                  and the benchmarks
#   scripts/build.sh TARGET...     only those targets (and what they need), e.g. uffdlazy
#
# Prints one line per file compiled or linked (and every warning or error), never the whole
# compiler command lines.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${UFFDLAZY_BUILD_DIR:-build}
targets=()
for t in "$@"; do targets+=(--target "$t"); done
start=$SECONDS
mkdir -p "$build_dir"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build_dir/configure.log" 2>&1 ||
  { cat "$build_dir/configure.log"; exit 1; }
# "[ 42%] Building CXX object core/CMakeFiles/uffdlazy_core.dir/monitor/monitor.cpp.o" becomes
# "build [ 42%] core/monitor/monitor.cpp"; cmake's bookkeeping lines are dropped; anything else
# (warnings, errors) passes through.
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}" 2>&1 | awk '
  /^\[ *[0-9]+%\] Building / {
    pct = substr($0, 1, index($0, "]")); f = $NF
    sub(/\.o$/, "", f); sub(/CMakeFiles\/[^\/]*\.dir\//, "", f)
    print "build " pct " " f; fflush(); next
  }
  /^\[ *[0-9]+%\] Linking / {
    pct = substr($0, 1, index($0, "]")); f = $NF; gsub(/^(\.\.\/)+/, "", f)
    print "build " pct " link " f; fflush(); next
  }
  /Built target|Scanning dependencies|Consolidate compiler|^gmake\[[0-9]+\]: (Entering|Leaving)|^\[ *[0-9]+%\] (Generating|Writing|Rendering)/ { next }
  { print; fflush() }'
echo "build: done in $((SECONDS - start)) s ($build_dir/bin/uffdlazy, $build_dir/lib/libuffdlazy.so)"
