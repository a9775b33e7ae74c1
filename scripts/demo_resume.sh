#!/usr/bin/env bash
# The resume demo. Sets up and builds uffdlazy, then starts a small python3 server (a heavy module
# set imported, a table built, a listening TCP socket on 127.0.0.1 and two worker threads accepting
# on it), checkpoints it once it is warm, and compares, side by side (median of 5 runs each, every
# answer checked against the cold start's), how long a cold start and `uffdlazy resume` (lazy and
# eager) take from launch until a client gets its first answer.
# UFFDLAZY_DEMO_WORKERS=processes forks the workers instead: a listening socket shared by the
# processes of a tree is not resumed yet (each would bind it again: the resume refuses, exit 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
scripts/build.sh uffdlazy
build_dir=${UFFDLAZY_BUILD_DIR:-build}
clean_env=()
for v in $(compgen -e); do [[ $v == UFFDLAZY_* ]] && clean_env+=(-u "$v"); done
env "${clean_env[@]}" python3 bench/server_demo.py --cli "$build_dir/bin/uffdlazy" \
  --runs "${UFFDLAZY_DEMO_RUNS:-5}" --workers "${UFFDLAZY_DEMO_WORKERS:-threads}"
