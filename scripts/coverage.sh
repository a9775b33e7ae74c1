#!/usr/bin/env bash
# How much of real programs' anonymous memory the shim sees, what that costs, and that their output
# does not change. For each program: its peak anonymous RSS without the shim (RssAnon sampled every
# 2 ms), the pages the shim served with UFFDLAZY_FAULT_AROUND=1 (each first touch of a registered
# page is one page served), their share of that peak, the share of the anonymous memory lying in
# registered mappings at the sampled peak under the shim (smaps `um`), the exit summary's seen=, and
# stdout compared byte for byte. Then the wall-time ratio of the shim (no snapshot, default
# fault-around) against plain runs (medians), and the cost of one intercepted call against the raw
# system call in the same process (bench/targets/call_cost.cpp). Writes bench/COVERAGE.md.
#
#   scripts/coverage.sh                  build into ./build, write bench/COVERAGE.md
#   UFFDLAZY_BUILD_DIR=dir               build directory
#   UFFDLAZY_COVERAGE_RUNS=N             timed runs per configuration (default 3; medians)
#   UFFDLAZY_COVERAGE_OUT=file           report path (default bench/COVERAGE.md)
#   UFFDLAZY_COVERAGE_ONLY="sort xz"     only these programs
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${UFFDLAZY_BUILD_DIR:-build}
runs=${UFFDLAZY_COVERAGE_RUNS:-3}
out=${UFFDLAZY_COVERAGE_OUT:-bench/COVERAGE.md}
only=${UFFDLAZY_COVERAGE_ONLY:-}
# The shim refuses unknown UFFDLAZY_* variables: the programs must not inherit the script's own.
unset UFFDLAZY_BUILD_DIR UFFDLAZY_COVERAGE_RUNS UFFDLAZY_COVERAGE_OUT UFFDLAZY_COVERAGE_ONLY

packages=(sqlite3 coreutils xz-utils gawk perl python3 nodejs lld-14 g++)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j2 --target uffdlazy_preload coverage_probe call_cost >/dev/null
shim=$(cd "$build_dir" && pwd)/lib/libuffdlazy.so
probe=$build_dir/bin/coverage_probe
call_cost=$build_dir/bin/call_cost

work=$(mktemp -d /tmp/uffdlazy-coverage-XXXXXX)
trap 'rm -rf "$work"' EXIT

# Inputs, generated deterministically.
awk 'BEGIN { srand(7); for (i = 0; i < 1500000; i++) printf "%08x %s %d\n", int(rand() * 4294967295), substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26), i }' >"$work/lines.txt"
head -c 12000000 "$work/lines.txt" >"$work/xz_input.txt"
cat >"$work/big.sql" <<'SQL'
PRAGMA cache_size = -200000;
CREATE TABLE big AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 600000)
  SELECT x, x * 7919 % 100003 AS y, printf('%0120d', x * 31) AS p FROM c;
CREATE INDEX big_y ON big(y, p);
SELECT count(*), sum(y), max(p) FROM big;
SELECT y, count(*) FROM big GROUP BY y ORDER BY count(*) DESC, y LIMIT 5;
SELECT p FROM big ORDER BY p DESC LIMIT 3;
SQL
cat >"$work/hash.pl" <<'PERL'
my %h; my @k;
for my $i (0 .. 1_200_000) { my $k = sprintf("k%08x", ($i * 2654435761) % 4294967296); $h{$k} = $i * 3; push @k, $k; }
my @s = sort @k; my $t = 0; $t += $h{$_} for @s[0 .. 999];
print scalar(@s), " $s[0] $s[-1] $t\n";
PERL
# The multi-threaded C++ program: LLVM's linker (ld.lld, 2 threads) linking 40 generated objects.
# LLD_IN_TEST=1 makes it return from main instead of calling _exit (which skips exit handlers, and
# with them the summary line).
mkdir -p "$work/objs"
for n in $(seq 1 40); do
  awk -v n="$n" 'BEGIN { for (i = 0; i < 1500; i++) printf "int f%d_%d(int x) { static int t[64]; t[x & 63] += x * %d; return t[(x >> 3) & 63] ^ %d; }\n", n, i, i + n, i; }' >"$work/objs/o$n.c"
done
(cd "$work/objs" && for f in o*.c; do g++ -x c -O1 -g -fPIC -ffunction-sections -c "$f" -o "${f%.c}.o"; done)
lld=$(command -v ld.lld-14 || command -v ld.lld)

declare -A cmd
cmd[sqlite3]="sqlite3 -batch :memory: < $work/big.sql"
cmd[sort]="env LC_ALL=C sort --parallel=2 -S 200M $work/lines.txt"
cmd[xz]="xz -7 -T1 -c $work/xz_input.txt"
cmd[gawk]="gawk '{ a[\$1] = \$2 \$3; n[\$2]++ } END { for (k in n) s += n[k]; print length(a), s }' $work/lines.txt"
cmd[perl]="perl $work/hash.pl"
cmd[python3]="/usr/bin/python3 -I tests/data/real_programs/alloc_digest.py"
cmd[node]="node tests/data/real_programs/alloc_digest.js"
cmd[ld.lld]="env LLD_IN_TEST=1 $lld -shared --threads=2 -o $work/lld.so $work/objs/*.o"
# Programs whose output is a file rather than stdout: compared instead of stdout.
declare -A output_file=([ld.lld]=$work/lld.so)
# Keeps what a run produced in $1.
keep_output() { if [[ -n "${output_file[$name]:-}" ]]; then cp "${output_file[$name]}" "$1"; fi; }
order=(sqlite3 sort xz gawk perl python3 node ld.lld)

field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<<"$2" | head -1; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

rows=()
overhead_rows=()
for name in "${order[@]}"; do
  if [[ -n "$only" && " $only " != *" $name "* ]]; then continue; fi
  c=${cmd[$name]}
  echo "coverage: $name" >&2
  plain_walls=() shim_walls=() peak=0
  for r in $(seq 1 "$runs"); do
    line=$("$probe" "$work/plain.out" -- bash -c "exec $c" 2>/dev/null)
    [[ $(field exit "$line") == 0 ]] || { echo "coverage: $name failed without the shim: $line" >&2; exit 1; }
    keep_output "$work/plain.out"
    plain_walls+=("$(field wall_ms "$line")")
    p=$(field peak_anon_kb "$line")
    if ((p > peak)); then peak=$p; fi
    line=$("$probe" "$work/shim.out" -- env UFFDLAZY_STRICT=1 LD_PRELOAD="$shim" bash -c "exec $c" 2>/dev/null)
    [[ $(field exit "$line") == 0 ]] || { echo "coverage: $name failed under the shim: $line" >&2; exit 1; }
    keep_output "$work/shim.out"
    shim_walls+=("$(field wall_ms "$line")")
  done
  # Coverage run: one page per fault, and smaps sampled.
  line=$("$probe" --smaps "$work/fa1.out" -- env UFFDLAZY_STRICT=1 UFFDLAZY_STATS=1 UFFDLAZY_FAULT_AROUND=1 \
    LD_PRELOAD="$shim" bash -c "exec $c" 2>"$work/fa1.err")
  keep_output "$work/fa1.out"
  summary=$(grep '^uffdlazy: pid=' "$work/fa1.err" | tail -1 || true)
  [[ $(field exit "$line") == 0 && -n "$summary" ]] || { echo "coverage: $name failed under the shim (fault-around 1): $line" >&2; cat "$work/fa1.err" >&2; exit 1; }
  same=identical
  cmp -s "$work/plain.out" "$work/fa1.out" && cmp -s "$work/plain.out" "$work/shim.out" || same=DIFFERENT
  [[ -s "$work/plain.out" ]] || same="empty output"
  faults=$(field faults "$summary")
  served_kb=$((faults * 4))
  share=$(awk -v s="$served_kb" -v p="$peak" 'BEGIN { printf "%.1f%%", p ? 100 * s / p : 0 }')
  at_peak=$(awk -v r="$(field smaps_registered_kb "$line")" -v a="$(field smaps_anon_kb "$line")" 'BEGIN { printf "%.1f%%", a ? 100 * r / a : 0 }')
  seen=$(sed -n 's/.* seen=\([0-9.]*%\).*/\1/p' <<<"$summary")
  intercept=$(sed -n 's/.* intercept=\([a-z]*\).*/\1/p' <<<"$summary")
  rows+=("| $name | $((peak / 1024)) | $((served_kb / 1024)) | **$share** | $at_peak | $seen | $intercept | $same |")
  pw=$(printf '%s\n' "${plain_walls[@]}" | median)
  sw=$(printf '%s\n' "${shim_walls[@]}" | median)
  overhead_rows+=("| $name | $pw | $sw | $(awk -v a="$sw" -v b="$pw" 'BEGIN { printf "%.2f", b ? a / b : 0 }') |")
done

echo "coverage: call costs" >&2
cost_plain=$("$call_cost")
cost_shim=$(LD_PRELOAD=$shim UFFDLAZY_STRICT=1 "$call_cost")
cost_symbols=$(LD_PRELOAD=$shim UFFDLAZY_STRICT=1 UFFDLAZY_INTERCEPT=symbols "$call_cost")

{
  echo "# Coverage of real programs' anonymous memory"
  echo
  echo "Written by \`scripts/coverage.sh\` on $(date -u +%Y-%m-%d) ($(uname -r), $(nproc) vCPUs, $(ldd --version | head -1 | sed 's/.* //') glibc)."
  echo "Timings are noisy on this VM: compare within a run."
  echo
  echo "- **peak anon**: the program's peak RssAnon without the shim (sampled every 2 ms), MiB."
  echo "- **served**: pages the shim served with \`UFFDLAZY_FAULT_AROUND=1\` (every first touch of a registered page), MiB; **share** = served / peak anon (above 100% when the program drops memory and touches it again)."
  echo "- **registered at peak**: under the shim, the share of anonymous memory lying in registered mappings (smaps \`um\`) at the sample with the most anonymous memory (shim's own aside memory left out)."
  echo "- **seen at exit**: the exit summary's \`seen=\` (see docs/variables.md)."
  echo "- **output**: stdout of the plain run, the default shim run and the fault-around-1 run compared byte for byte."
  echo
  echo "| program | peak anon (MiB) | served (MiB) | share | registered at peak | seen at exit | intercept | output |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"
  printf '%s\n' "${rows[@]}"
  echo
  echo "## Whole-program overhead of the shim (no snapshot, default fault-around 16)"
  echo
  echo "Median wall time of $runs runs each, in ms (the measurement's own 2 ms sampling included in both)."
  echo
  echo "| program | plain | shim | ratio |"
  echo "| --- | ---: | ---: | ---: |"
  printf '%s\n' "${overhead_rows[@]}"
  echo
  echo "## Cost of one intercepted call (bench/targets/call_cost.cpp)"
  echo
  echo "ns per call in the same process: the raw system call's median over 101 batches (each way warmed up, the order"
  echo "rotated), and in parentheses the median over the same batches of each way minus the raw call timed in that batch"
  echo "(the VM's speed drifts by more than the shim adds; pairing within a batch cancels the drift). 4 KiB mappings are"
  echo "below UFFDLAZY_MIN_SIZE, so the shim intercepts them and registers nothing: the added cost is the interception's"
  echo "(goal: at most 100 ns per pair). 1 MiB mappings are registered under the shim: one UFFDIO_REGISTER, and munmap"
  echo "waits until the monitor has read the kernel's UNMAP event (a thread round trip), which is what keeps a later"
  echo "mapping at that address from ever receiving the old region's pages. malloc+free of 512 KiB above a pinned mmap"
  echo "threshold is such a pair inside libc."
  echo
  echo "Without the shim:"
  echo '```'
  echo "$cost_plain"
  echo '```'
  echo "Under the shim, UFFDLAZY_INTERCEPT=libc (the default):"
  echo '```'
  echo "$cost_shim"
  echo '```'
  echo "Under the shim, UFFDLAZY_INTERCEPT=symbols:"
  echo '```'
  echo "$cost_symbols"
  echo '```'
} >"$out"
echo "coverage: wrote $out" >&2
cat "$out"
