#!/usr/bin/env bash
# Builds uffdlazy and runs every benchmark in one go, so each ratio compares cases measured side by
# side on the same machine at the same time; bench/render.py then writes bench/RESULTS.md.
#
#   1. restore: bench/targets/restore_scan over a 512 MiB region, touching 100% of its pages in
#      order, 100% at random and 1% at random, its memory coming from a read(2) of a raw image, an
#      mmap of that image, the kernel's demand-zero fill, or a lazy restore (on demand, readahead,
#      background fill of everything, working-set replay); whole-process wall times (wall_time) and
#      the blocking faults of each run; then how much CPU an idle monitor uses after the fill.
#   2. faults: the fault and event benchmarks (bench/fault_bench*.cpp, Google Benchmark) and the
#      cost of recording one fault (bench/latency_record_bench.cpp), in one process; among them the
#      shim's single-page fault beside a minimal userfaultfd handler in the same placements.
#   3. felt: bench/targets/felt_latency with and without the real shim (LD_PRELOAD), to compare what
#      a program feels with what the shim's JSON report says.
#
#   scripts/bench.sh                      build into ./build, write bench/RESULTS.md
#   UFFDLAZY_BUILD_DIR=dir                build directory (as scripts/build.sh)
#   UFFDLAZY_BENCH_REPETITIONS=N          repetitions per Google Benchmark case (default 5; medians)
#   UFFDLAZY_BENCH_FELT_RUNS=N            runs of felt_latency per configuration (default 5; medians)
#   UFFDLAZY_BENCH_FELT_PAGES=N           pages felt_latency touches per phase (default 4096)
#   UFFDLAZY_BENCH_RESTORE_RUNS=N         runs of each restore configuration (default 5; medians)
#   UFFDLAZY_BENCH_RESTORE_MIB=N          size of the restored region (default 512)
#   UFFDLAZY_BENCH_ONLY=restore|faults    run one part only (the report then says what is missing)
#   UFFDLAZY_BENCH_NO_BUILD=1             use the binaries already built
#   UFFDLAZY_BENCH_OUT=file               where to write the report (default bench/RESULTS.md)
#   UFFDLAZY_BENCH_KEEP=dir               keep the raw measurements there (default: a temporary dir)
#
# Needs userfaultfd with kernel-mode faults (root here), two CPUs for the pinned placements, and
# about 2.5 GiB of free space in /tmp for the snapshot and the raw image. Takes about five minutes
# on 2 vCPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${UFFDLAZY_BUILD_DIR:-build}
reps=${UFFDLAZY_BENCH_REPETITIONS:-5}
felt_runs=${UFFDLAZY_BENCH_FELT_RUNS:-5}
felt_pages=${UFFDLAZY_BENCH_FELT_PAGES:-4096}
restore_runs=${UFFDLAZY_BENCH_RESTORE_RUNS:-5}
restore_mib=${UFFDLAZY_BENCH_RESTORE_MIB:-512}
only=${UFFDLAZY_BENCH_ONLY:-}
out=${UFFDLAZY_BENCH_OUT:-bench/RESULTS.md}

if [[ "${UFFDLAZY_BENCH_NO_BUILD:-0}" != 1 ]]; then
  UFFDLAZY_BUILD_DIR=$build_dir scripts/build.sh
fi
bin=$build_dir/bin
shim=$(cd "$build_dir" && pwd)/lib/libuffdlazy.so
for f in "$bin/uffdlazy_bench" "$bin/felt_latency" "$bin/restore_scan" "$bin/wall_time" "$bin/uffdlazy" "$shim"; do
  [[ -e "$f" ]] || { echo "bench.sh: $f not found (build everything: scripts/build.sh)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "bench.sh: python3 is needed for bench/render.py" >&2; exit 1; }

if [[ -n "${UFFDLAZY_BENCH_KEEP:-}" ]]; then
  work=$UFFDLAZY_BENCH_KEEP
  rm -rf "$work"
  mkdir -p "$work"
else
  work=$(mktemp -d /tmp/uffdlazy-bench.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/felt" "$work/restore"

# The shim refuses unknown UFFDLAZY_* variables (this script's own UFFDLAZY_BENCH_* among them) and
# must not inherit the caller's settings: every UFFDLAZY_* variable is removed for the runs.
clean_env=()
for v in $(compgen -e); do [[ $v == UFFDLAZY_* ]] && clean_env+=(-u "$v"); done
read -r cpu0 cpu1 < <(python3 -c 'import os; c = sorted(os.sched_getaffinity(0)); print(c[0], c[1] if len(c) > 1 else -1)')
start_s=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 1. restore ----------------------------------------------------------------------------------
if [[ -z "$only" || "$only" == restore ]]; then
  r=$work/restore
  mib=$restore_mib
  scan=$(cd "$bin" && pwd)/restore_scan
  echo "bench.sh: restore: writing a $mib MiB raw image and recording a snapshot of it..." >&2
  "$scan" image --mib "$mib" "$r/image"
  env "${clean_env[@]}" "$bin/uffdlazy" record -o "$r/snapshot" -- "$scan" fill --mib "$mib" >/dev/null 2>"$r/record.err"
  patterns=("seq 100" "random 100" "random 1")
  tag_of() { echo "${1// /-}"; }
  # The working set of each pattern, recorded from a restore of it.
  for p in "${patterns[@]}"; do
    read -r order pct <<<"$p"
    env "${clean_env[@]}" "$bin/uffdlazy" restore "$r/snapshot" --ws-record "$r/ws.$(tag_of "$p")" -- \
      "$scan" touch --mib "$mib" --order "$order" --percent "$pct" >/dev/null 2>>"$r/ws-record.err"
  done
  methods=(eager mmap zero none readahead-1t readahead all-1t all ws)
  echo "bench.sh: restore: ${#methods[@]} methods x ${#patterns[@]} access patterns x $restore_runs runs..." >&2
  for ((run = 1; run <= restore_runs; run++)); do
    for p in "${patterns[@]}"; do
      read -r order pct <<<"$p"
      touch_args=(touch --mib "$mib" --order "$order" --percent "$pct")
      for m in "${methods[@]}"; do
        case $m in
          eager) cmd=("$scan" "${touch_args[@]}" --from read --image "$r/image") ;;
          mmap) cmd=("$scan" "${touch_args[@]}" --from mmap --image "$r/image") ;;
          zero) cmd=("$scan" "${touch_args[@]}" --from zero) ;;
          none) cmd=("$bin/uffdlazy" restore "$r/snapshot" --stats --prefetch none --readahead 1 -- "$scan" "${touch_args[@]}") ;;
          readahead-1t) cmd=(env UFFDLAZY_COPY_THREADS=1 "$bin/uffdlazy" restore "$r/snapshot" --stats --prefetch none -- "$scan" "${touch_args[@]}") ;;
          readahead) cmd=("$bin/uffdlazy" restore "$r/snapshot" --stats --prefetch none -- "$scan" "${touch_args[@]}") ;;
          all-1t) cmd=(env UFFDLAZY_COPY_THREADS=1 "$bin/uffdlazy" restore "$r/snapshot" --stats --prefetch all -- "$scan" "${touch_args[@]}") ;;
          all) cmd=("$bin/uffdlazy" restore "$r/snapshot" --stats --prefetch all -- "$scan" "${touch_args[@]}") ;;
          ws) cmd=("$bin/uffdlazy" restore "$r/snapshot" --stats --prefetch ws --ws "$r/ws.$(tag_of "$p")" -- "$scan" "${touch_args[@]}") ;;
        esac
        base="$r/$(tag_of "$p").$m"
        env "${clean_env[@]}" "$bin/wall_time" "$base.time" -- "${cmd[@]}" >>"$base.out" 2>>"$base.err" || true
      done
    done
  done
  # The monitor once the fill is done: the program reads 1%, waits until every page is in place,
  # then sleeps a second while its monitor thread's CPU time is measured.
  for ((run = 1; run <= 3; run++)); do
    env "${clean_env[@]}" "$bin/uffdlazy" restore "$r/snapshot" --stats -- "$scan" touch --mib "$mib" --order random \
      --percent 1 --wait-resident --idle-ms 1000 >>"$r/idle.out" 2>>"$r/idle.err" || true
  done
  # Readahead alone without checksums, to show what verification costs on a full scan.
  for ((run = 1; run <= restore_runs; run++)); do
    env "${clean_env[@]}" "$bin/wall_time" "$r/seq-100.readahead-noverify.time" -- "$bin/uffdlazy" restore "$r/snapshot" \
      --stats --prefetch none --verify none -- "$scan" touch --mib "$mib" --order seq --percent 100 \
      >>"$r/seq-100.readahead-noverify.out" 2>>"$r/seq-100.readahead-noverify.err" || true
  done
  # The floor: the kernel installing the image with UFFDIO_COPY from one thread, no faults at all,
  # beside read(2) of it, in one process.
  for ((run = 1; run <= restore_runs; run++)); do
    "$scan" floor --mib "$mib" --image "$r/image" >>"$r/floor.out" 2>&1 || true
    "$scan" floor --mib "$mib" --image "$r/image" --hash >>"$r/floor.out" 2>&1 || true
    "$scan" floor --mib "$mib" --image "$r/image" --hash --threads 2 >>"$r/floor.out" 2>&1 || true
  done
  rm -f "$r/image" "$r/snapshot"
fi

# ---- 2. faults (Google Benchmark) -----------------------------------------------------------------
if [[ -z "$only" || "$only" == faults ]]; then
  echo "bench.sh: running $bin/uffdlazy_bench ($reps repetitions)..." >&2
  "$bin/uffdlazy_bench" --benchmark_filter='^(fault|event|install)/|^BM_(ObserverFault|ClockRead)$' \
    --benchmark_format=json --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true >"$work/gbench.json"

  # ---- 3. felt latency under the real shim --------------------------------------------------------
  # The kernel alone, then the real shim with one page per fault (UFFDLAZY_FAULT_AROUND=1) at the
  # shim's spin (50 us) and at spin 0, in three placements; one phase per run, so each run's report
  # holds the faults of that phase only. Runs are interleaved.
  echo "bench.sh: running $bin/felt_latency with and without the shim ($felt_runs runs per configuration)..." >&2
  f=$work/felt
  for ((run = 1; run <= felt_runs; run++)); do
    env "${clean_env[@]}" "$bin/felt_latency" --pages "$felt_pages" >"$f/kernel.$run.out"
    for spin in 50 0; do
      for pl in unpinned cross-cpu same-cpu; do
        pin=()
        case $pl in
          cross-cpu) ((cpu1 >= 0)) || continue; pin=(taskset -c "$cpu1"); mon=$cpu0 ;;
          same-cpu) pin=(taskset -c "$cpu0"); mon=$cpu0 ;;
          *) mon= ;;
        esac
        for phase in read write; do
          tag="shim-spin$spin-$pl-$phase.$run"
          # taskset first: the shim must be preloaded into felt_latency only. Symbols only: the
          # report must count the faults of felt_latency's own region, not of memory libc maps.
          "${pin[@]}" env "${clean_env[@]}" LD_PRELOAD="$shim" UFFDLAZY_INTERCEPT=symbols UFFDLAZY_FAULT_AROUND=1 UFFDLAZY_SPIN_US="$spin" \
            ${mon:+UFFDLAZY_MONITOR_CPU=$mon} UFFDLAZY_REPORT="$f/$tag.json" \
            "$bin/felt_latency" --pages "$felt_pages" --phase "$phase" >"$f/$tag.out" 2>"$f/$tag.err"
        done
      done
    done
  done
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cat >"$work/machine.env" <<EOF
date=$(date -u '+%Y-%m-%d %H:%M UTC')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- bench core scripts/bench.sh ':!bench/RESULTS.md' 2>/dev/null | grep -q . && echo yes || echo no)
kernel=$(uname -r)
nproc=$(nproc)
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)
thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)
load=$load_before before, $load_after after
seconds=$(($(date +%s) - start_s))
reps=$reps
felt_runs=$felt_runs
felt_pages=$felt_pages
restore_runs=$restore_runs
restore_mib=$restore_mib
EOF
python3 bench/render.py "$work" >"$out.tmp"
mv "$out.tmp" "$out"
echo "bench.sh: wrote $out" >&2
