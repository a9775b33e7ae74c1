#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang-14, ASan + UBSan) into build-fuzz/ and runs
# each for SECONDS (default 60), starting from its committed corpus in tests/fuzz/corpus/TARGET.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: snapshot_reader report_json trace_file
# Fails on any crash, sanitizer report, leak, out-of-memory, hang (5 s), or input that takes more
# than 100 ms of CPU (tests/fuzz/fuzz_budget.h). What a run finds goes to
# build-fuzz/findings/TARGET/ (replay: build-fuzz/bin/fuzz_TARGET FILE); inputs it adds to the
# corpus go to build-fuzz/corpus/TARGET, never to the committed seeds.
# The committed corpus: files written by build-fuzz/bin/make_fuzz_seeds tests/fuzz/corpus (the
# project's own writers; regress-* among them reproduce bugs the readers had), and regress-*
# inputs a fuzzer found, kept so that every run replays them first.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(snapshot_reader report_json trace_file)
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2; }

scripts/setup.sh
build_dir=${UFFDLAZY_FUZZ_BUILD_DIR:-build-fuzz}
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build_dir" -DUFFDLAZY_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
UFFDLAZY_BUILD_DIR=$build_dir scripts/build.sh "${targets[@]/#/fuzz_}"

max_len() {
  case $1 in
    snapshot_reader) echo 65536 ;;  # a header page, a few data pages and the tables
    report_json) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

failed=()
for t in "${targets[@]}"; do
  corpus=$build_dir/corpus/$t findings=$build_dir/findings/$t log=$build_dir/fuzz-$t.log
  mkdir -p "$corpus" "$findings"
  extra=()
  [[ -f tests/fuzz/$t.dict ]] && extra+=(-dict="tests/fuzz/$t.dict")
  if "$build_dir/bin/fuzz_$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=5 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$findings/" "${extra[@]}" "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "fuzz $t: ok, $execs inputs in ${seconds}s ($rate/s)"
  else
    echo "fuzz $t: FAILED (log: $log)"
    grep -E "ERROR|SUMMARY|runtime error|budget|Test unit written" "$log" | head -20 || tail -20 "$log"
    failed+=("$t")
  fi
done
((${#failed[@]} == 0)) || { echo "fuzz: failures in ${failed[*]}" >&2; exit 1; }
