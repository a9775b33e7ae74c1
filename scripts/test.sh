#!/usr/bin/env bash
# Sets up, builds and runs the tests. This is the README's test command and what CI runs.
#
#   scripts/test.sh                   the whole suite (unit and end-to-end) in build/, then the
#                                     unit tests under ASan+UBSan and under TSan, then each fuzzer
#                                     for UFFDLAZY_CI_FUZZ_SECONDS (default 15)
#   scripts/test.sh --sanitize KIND   only the unit tests, built with clang-14 and the sanitizer
#                                     KIND (address, undefined, thread, or a comma list such as
#                                     address,undefined) in a build directory of its own
#
# The sanitized builds leave out libuffdlazy.so and so the end-to-end tests: a sanitizer runtime
# cannot be preloaded into arbitrary programs. They test core/ and tools/ in-process instead
# (the unit tests, the monitor tests among them, and the CLI they run).
#
# Each stage starts with a line saying what it is and how long the run has taken so far, and
# ends with how long it took (times measured here: docs/development.md).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS stage_start=$SECONDS stage_name=
clock() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
stage() {
  [[ -z $stage_name ]] || echo "== $stage_name: done in $(clock $((SECONDS - stage_start)))"
  stage_start=$SECONDS stage_name=$1
  [[ -z $stage_name ]] || echo "== [$(clock $((SECONDS - start)))] $stage_name"
}

sanitized_dir() {
  local d=build
  local k
  for k in ${1//,/ }; do
    case $k in
      address) d+=-asan ;;
      undefined) d+=-ubsan ;;
      thread) d+=-tsan ;;
      *) echo "test.sh: unknown sanitizer '$k' (address, undefined, thread)" >&2; exit 2 ;;
    esac
  done
  echo "$d"
}

run_sanitized() {
  local kinds=$1 dir fuzz=()
  dir=$(sanitized_dir "$kinds")
  # The fuzzers are ASan + UBSan too: that build also has them (stage 5 builds them from the same
  # objects of core/ and tools/ instead of compiling those a third time).
  [[ $kinds == address,undefined ]] && fuzz=(-DUFFDLAZY_FUZZ=ON)
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$dir" -DUFFDLAZY_SANITIZE="$kinds" "${fuzz[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  CC=clang-14 CXX=clang++-14 UFFDLAZY_BUILD_DIR=$dir scripts/build.sh unit_tests
  # Reports go to the test's output; any report fails the test (UBSan: -fno-sanitize-recover).
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --test-dir "$dir" --output-on-failure --timeout 600 -j2
}

if [[ ${1:-} == --sanitize ]]; then
  [[ -n ${2:-} ]] || { echo "usage: scripts/test.sh [--sanitize address|undefined|thread|address,undefined]" >&2; exit 2; }
  stage "packages (scripts/setup.sh)"
  scripts/setup.sh
  stage "unit tests under $2"
  run_sanitized "$2"
  stage ""
  exit
fi
[[ $# -eq 0 ]] || { echo "usage: scripts/test.sh [--sanitize address|undefined|thread|address,undefined]" >&2; exit 2; }

stage "1/5 packages (scripts/setup.sh)"
scripts/setup.sh
stage "2/5 build (scripts/build.sh: the CLI, the shim, the manual, the tests, the benchmarks)"
scripts/build.sh
build_dir=${UFFDLAZY_BUILD_DIR:-build}
stage "3/5 ctest: unit, end-to-end, install and package tests, remote tests on a local S3 and HTTP server ($build_dir)"
ctest --test-dir "$build_dir" --output-on-failure --timeout 600 -j2
stage "4/5 unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, then ThreadSanitizer"
run_sanitized address,undefined
run_sanitized thread
stage "5/5 fuzzing, ${UFFDLAZY_CI_FUZZ_SECONDS:-15} s per reader"
UFFDLAZY_FUZZ_BUILD_DIR=$(sanitized_dir address,undefined) scripts/fuzz.sh "${UFFDLAZY_CI_FUZZ_SECONDS:-15}"
stage ""
echo "== all stages passed in $(clock $((SECONDS - start)))"
