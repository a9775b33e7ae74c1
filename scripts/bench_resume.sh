#!/usr/bin/env bash
# Measures `uffdlazy resume` (bench/resume_bench.py) and writes bench/RESUME_RESULTS.md:
#   * a program with 512 MiB of computed state, checkpointed after its warm-up, resumed lazily and
#     eagerly (image cached or not) and started cold, then touching 1% of its pages at random:
#     launch to running, and total;
#   * python3 after importing a heavy module set: time until it answers, cold vs resumed.
#
#   scripts/bench_resume.sh               build into ./build, 5 runs per configuration
#   UFFDLAZY_BUILD_DIR=dir                build directory (as scripts/build.sh)
#   UFFDLAZY_BENCH_RUNS=N                 runs per configuration (default 5; medians reported)
#   UFFDLAZY_BENCH_MIB=N                  size of the state (default 512)
#   UFFDLAZY_BENCH_NO_BUILD=1             use the binaries already built
#   UFFDLAZY_BENCH_OUT=file               where to write the report (default bench/RESUME_RESULTS.md)
#   UFFDLAZY_BENCH_CRIU=/path/to/criu     also uffdlazy side by side with criu dump/restore (and
#                                         restore --lazy-pages): bench/criu_compare.py, whose table
#                                         is appended to the report (needs root and CRIU >= 4.x)
#
# Needs userfaultfd with kernel-mode faults (root here). Takes about a minute on 2 vCPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${UFFDLAZY_BUILD_DIR:-build}
if [[ "${UFFDLAZY_BENCH_NO_BUILD:-0}" != 1 ]]; then
  UFFDLAZY_BUILD_DIR=$build_dir scripts/build.sh >/dev/null
fi
for f in "$build_dir/bin/uffdlazy" "$build_dir/bin/uffdlazy-restorer" "$build_dir/bin/resume_bench_target"; do
  [[ -x "$f" ]] || { echo "bench_resume.sh: $f not found (build first)" >&2; exit 1; }
done
# The shim refuses unknown UFFDLAZY_* variables (this script's own among them).
clean_env=()
for v in $(compgen -e); do [[ $v == UFFDLAZY_* ]] && clean_env+=(-u "$v"); done
runs=${UFFDLAZY_BENCH_RUNS:-5}
mib=${UFFDLAZY_BENCH_MIB:-512}
out=${UFFDLAZY_BENCH_OUT:-bench/RESUME_RESULTS.md}
env "${clean_env[@]}" python3 bench/resume_bench.py --cli "$build_dir/bin/uffdlazy" \
  --target "$build_dir/bin/resume_bench_target" --mb "$mib" --runs "$runs" --out "$out"
if [[ -n "${UFFDLAZY_BENCH_CRIU:-}" ]]; then
  for f in "$build_dir/targets/sparse_reservation"; do
    [[ -x "$f" ]] || { echo "bench_resume.sh: $f not found (build first)" >&2; exit 1; }
  done
  table=$(env "${clean_env[@]}" python3 bench/criu_compare.py --cli "$build_dir/bin/uffdlazy" \
    --bench-target "$build_dir/bin/resume_bench_target" --sparse-target "$build_dir/targets/sparse_reservation" \
    --criu "$UFFDLAZY_BENCH_CRIU" --criu-lazy --runs "$runs")
  printf '\n## Side by side with CRIU\n\n`bench/criu_compare.py` (see its header for what is measured).\n\n%s\n' "$table" | tee -a "$out"
fi
