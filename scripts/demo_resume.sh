#!/usr/bin/env bash
# The resume demo. Sets up and builds uffdlazy, then checkpoints a warmed-up python3 (a few dozen
# standard modules imported, a large dict built) while it waits on stdin, and compares, side by
# side (median of 5 runs each), how long a cold start and `uffdlazy resume` (lazy and eager) take
# until python answers, and until it has exited.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
scripts/build.sh uffdlazy resume_bench_target
build_dir=${UFFDLAZY_BUILD_DIR:-build}
clean_env=()
for v in $(compgen -e); do [[ $v == UFFDLAZY_* ]] && clean_env+=(-u "$v"); done
env "${clean_env[@]}" python3 bench/resume_bench.py --demo --cli "$build_dir/bin/uffdlazy" \
  --target "$build_dir/bin/resume_bench_target" --runs "${UFFDLAZY_DEMO_RUNS:-5}"
