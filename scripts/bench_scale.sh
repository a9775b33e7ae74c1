#!/usr/bin/env bash
# Costs that grow with a count, plain against the shim, side by side in one run (a ratio per
# scenario; the machine's load moves both). Runs tests/targets/scale_target:
#   mappings 65000, mmap-fork N 1024 (a 1 GiB mapping and a fork, N times), threads 1024,
#   thread-chains N 0 (zdtm thread-bomb: time until main has started N never-ending chains).
#
#   scripts/bench_scale.sh [RUNS]      medians of RUNS (default 3) runs of each
#   UFFDLAZY_BUILD_DIR=dir             build directory (default build)
#   UFFDLAZY_SCALE_SO=path             the shim to measure (default the built one), e.g. an older build
#   UFFDLAZY_SCALE_FORKS=N             forks in mmap-fork (default 2000)
#   UFFDLAZY_SCALE_CHAINS=N            chains in thread-chains (default 256)
#   UFFDLAZY_SCALE_TIMEOUT=S           a run that takes longer counts as S seconds (default 300)
# Prints, per scenario: median wall seconds to the milestone plain and with the shim, the ratio,
# and the CPU seconds (user+sys, children included) of each.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${UFFDLAZY_BUILD_DIR:-build}
so=${UFFDLAZY_SCALE_SO:-$build/lib/libuffdlazy.so}
target=$build/targets/scale_target
runs=${1:-3}
forks=${UFFDLAZY_SCALE_FORKS:-2000}
chains=${UFFDLAZY_SCALE_CHAINS:-256}
timeout_s=${UFFDLAZY_SCALE_TIMEOUT:-300}
[[ -x $target && -f $so ]] || { echo "build scale_target and uffdlazy_preload first ($target, $so)" >&2; exit 2; }

# One run: "<milestone seconds> <cpu seconds>" (the timeout when it did not finish).
one() {
  local preload=$1 milestone=$2; shift 2
  local err
  err=$(mktemp)
  if LD_PRELOAD=$preload timeout "$timeout_s" /usr/bin/time -f "cpu %U %S" "$target" "$@" > /dev/null 2> "$err"; then
    awk -v m="$milestone" '$1=="scale_target:" && $2==m {t=$3} $1=="cpu" {c=$2+$3} END {printf "%s %.2f\n", t, c}' "$err"
  else
    echo "$timeout_s $timeout_s"
  fi
  rm -f "$err"
}

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

scenario() {
  local name=$1 milestone=$2; shift 2
  local pw=() pc=() sw=() sc=()
  for ((i = 0; i < runs; i++)); do
    read -r w c < <(one "" "$milestone" "$@"); pw+=("$w"); pc+=("$c")
    read -r w c < <(one "$so" "$milestone" "$@"); sw+=("$w"); sc+=("$c")
  done
  local mpw mpc msw msc
  mpw=$(printf '%s\n' "${pw[@]}" | median); mpc=$(printf '%s\n' "${pc[@]}" | median)
  msw=$(printf '%s\n' "${sw[@]}" | median); msc=$(printf '%s\n' "${sc[@]}" | median)
  awk -v n="$name" -v pw="$mpw" -v sw="$msw" -v pc="$mpc" -v sc="$msc" \
    'BEGIN {printf "| %-28s | %8.2f | %8.2f | %6.2fx | %7.2f | %7.2f |\n", n, pw, sw, (pw > 0 ? sw / pw : 0), pc, sc}'
}

echo "| scenario | plain s | shim s | ratio | plain cpu s | shim cpu s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
scenario "mappings 65000" done mappings 65000
scenario "mmap 1 GiB + fork x $forks" done mmap-fork "$forks" 1024
scenario "threads 1024 (barrier)" done threads 1024
scenario "thread-chains $chains (ready)" ready thread-chains "$chains" 0
