#!/usr/bin/env bash
# Soaks the shim: runs the randomized stress target (build/targets/mapping_stress) under
# LD_PRELOAD=libuffdlazy.so for MINUTES, one run after another, with a new seed each run and thread
# counts mixed up to THREADS (default 64), a third of the runs with UFFDLAZY_MIN_SIZE=64K (small
# mappings left unregistered), the others with 4K. Prints each failing run, a progress line a
# minute, then the totals: operations,
# mismatches (must be 0), hangs, crashes and the shim's own counters summed over the runs (from its
# UFFDLAZY_STATS=1 line). Exits 1 if any run had a mismatch, hung or crashed, after printing the
# command that reproduces each such run.
#
#   scripts/soak.sh MINUTES [THREADS]
#
# Environment: SOAK_SEED (first seed; default: the clock), SOAK_OPS (operation families, default
# all), SOAK_STEPS (steps per thread, default 300), SOAK_WATCHDOG (seconds without progress that
# count as a hang, default 30), SOAK_CLOSE_RANGE=1 (every fourth run closes its descriptors at
# startup), SOAK_STOP=1 (stop at the first failing run), SOAK_VERBOSE=1 (a line for every run, not
# only failing ones), SOAK_DIR (where the output of failing runs is kept, default out/soak).
# Other UFFDLAZY_* variables (UFFDLAZY_FAULT_AROUND=1, UFFDLAZY_SPIN_US=0...) reach the target.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "usage: scripts/soak.sh MINUTES [THREADS]" >&2
  exit 2
fi
minutes=$1
max_threads=${2:-64}
if ! [[ $max_threads =~ ^[0-9]+$ ]] || ((max_threads < 1 || max_threads > 1000)); then
  echo "soak: THREADS must be from 1 to 1000" >&2
  exit 2
fi

build_dir=${UFFDLAZY_BUILD_DIR:-build}
target="$build_dir/targets/mapping_stress"
shim="$build_dir/lib/libuffdlazy.so"
if [[ ! -x $target || ! -f $shim ]]; then
  scripts/setup.sh
  scripts/build.sh >/dev/null
fi
target=$(realpath "$target")
shim=$(realpath "$shim")

ops=${SOAK_OPS:-all}
steps=${SOAK_STEPS:-300}
watchdog=${SOAK_WATCHDOG:-30}
seed=${SOAK_SEED:-$(date +%s)}
out_dir=${SOAK_DIR:-out/soak}
mkdir -p "$out_dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Thread counts to mix: a spread of small and large ones, all at most the maximum.
choices=()
for t in 1 2 3 4 8 12 16 24 32 48 64 96 128 192 256 384 512 768 1000; do
  ((t <= max_threads)) && choices+=("$t")
done
((choices[-1] == max_threads)) || choices+=("$max_threads")

deadline=$(($(date +%s) + $(awk -v m="$minutes" 'BEGIN {printf "%d", m * 60}')))
start_time=$(date +%s)
next_progress=$((start_time + 60))
runs=0 total_ops=0 mismatches=0 hangs=0 crashes=0 failed_runs=0
declare -A shim_totals=()
shim_keys=()
reproducers=()

while (($(date +%s) < deadline)); do
  hash=$(((seed * 2654435761) % 4294967296))
  threads=${choices[$((hash % ${#choices[@]}))]}
  min_size=4K
  (((hash >> 8) % 3 == 2)) && min_size=64K  # a third of the runs leave small mappings unregistered
  extra=()
  [[ ${SOAK_CLOSE_RANGE:-0} == 1 ]] && (((hash >> 12) % 4 == 3)) && extra=(--close-range)
  args=(--seed "$seed" --threads "$threads" --steps "$steps" --ops "$ops" --watchdog "$watchdog" "${extra[@]}")
  repro="UFFDLAZY_STRICT=1 UFFDLAZY_STATS=1 UFFDLAZY_MIN_SIZE=$min_size LD_PRELOAD=$shim $target ${args[*]}"
  started=$(date +%s.%N)
  set +e
  # The target's watchdog reports a hang itself (status 124); timeout is the backstop if it cannot.
  timeout -s KILL $((watchdog * 3 + 60)) env UFFDLAZY_STRICT=1 UFFDLAZY_STATS=1 UFFDLAZY_MIN_SIZE=$min_size \
    LD_PRELOAD="$shim" "$target" "${args[@]}" >"$tmp/out" 2>"$tmp/err"
  status=$?
  set -e
  seconds=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
  runs=$((runs + 1))

  run_ops=$(sed -n 's/^total_ops=\([0-9]*\).*/\1/p' "$tmp/out")
  run_mismatches=$(sed -n 's/^mismatches=\([0-9]*\)$/\1/p' "$tmp/out")
  total_ops=$((total_ops + ${run_ops:-0}))
  pid=$(sed -n 's/^mapping_stress: pid=\([0-9]*\)$/\1/p' "$tmp/err" | head -1)
  summary=$(grep "^uffdlazy: pid=$pid " "$tmp/err" | head -1 || true)
  for kv in $summary; do
    [[ $kv =~ ^([a-z_]+)=([0-9]+)$ ]] || continue
    key=${BASH_REMATCH[1]}
    [[ $key == pid ]] && continue
    [[ -v shim_totals[$key] ]] || shim_keys+=("$key")
    shim_totals[$key]=$((${shim_totals[$key]:-0} + BASH_REMATCH[2]))
  done

  verdict=ok
  if ((status == 124)) || ((status == 137)); then
    verdict="HANG"
    hangs=$((hangs + 1))
  elif ((status > 128)); then
    verdict="CRASH (signal $((status - 128)))"
    crashes=$((crashes + 1))
  elif [[ -z $run_mismatches ]]; then
    verdict="FAILED (status $status, no summary)"
    crashes=$((crashes + 1))
  elif ((run_mismatches != 0 || status != 0)); then
    verdict="MISMATCH ($(grep '^wrong_pages=' "$tmp/out"))"
    mismatches=$((mismatches + run_mismatches))
  fi
  if [[ $verdict != ok || ${SOAK_VERBOSE:-0} == 1 ]]; then
    printf 'run %d: seed=%s threads=%s min_size=%s%s: %s, %s ops, %s s\n' "$runs" "$seed" "$threads" "$min_size" \
      "${extra[*]:+ ${extra[*]}}" "$verdict" "${run_ops:-?}" "$seconds"
  fi
  if (($(date +%s) >= next_progress)); then
    echo "soak: $(($(date +%s) - start_time)) s: $runs runs, $total_ops ops, $failed_runs failing runs so far"
    next_progress=$(($(date +%s) + 60))
  fi
  if [[ $verdict != ok ]]; then
    failed_runs=$((failed_runs + 1))
    cp "$tmp/err" "$out_dir/seed-$seed.err"
    cp "$tmp/out" "$out_dir/seed-$seed.out"
    { grep -m2 -E '^(CRASH|mapping_stress: WATCHDOG|uffdlazy: monitor)' "$tmp/err" || true
      grep -m3 -E '^(wrong page|failed call|child failure|file error)' "$tmp/err" || true; } | sed 's/^/    /'
    echo "    reproduce: $repro"
    echo "    stderr kept in $out_dir/seed-$seed.err"
    reproducers+=("$verdict: $repro")
    [[ ${SOAK_STOP:-0} == 1 ]] && break
  fi
  seed=$((seed + 1))
done

echo
echo "soak: $runs runs in $minutes min (threads up to $max_threads, ops $ops): total_ops=$total_ops" \
  "mismatches=$mismatches hangs=$hangs crashes=$crashes failed_runs=$failed_runs"
counters=""
for key in "${shim_keys[@]}"; do counters+=" $key=${shim_totals[$key]}"; done
echo "soak: shim counters summed over the runs:${counters:- (none: no summary line was printed)}"
if ((failed_runs)); then
  echo "soak: FAILED; each failing run is reproduced by:"
  printf '  %s\n' "${reproducers[@]}"
  exit 1
fi
echo "soak: every run was clean"
