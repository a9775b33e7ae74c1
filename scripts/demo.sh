#!/usr/bin/env bash
# The built-in demo. Sets up and builds uffdlazy, then:
#   1. starts the demo program (a 256 MiB in-memory index) cold, without the shim;
#   2. records it: the same cold start under `uffdlazy record`, snapshot written at exit;
#   3. verifies the snapshot;
#   4. restores it: the program finds its index already in memory, page by page on first touch;
# and compares time-to-ready (median of 3 runs each, side by side), pages touched and fault latency.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
build_dir=${UFFDLAZY_BUILD_DIR:-build}
bin="$build_dir/bin"
out=${UFFDLAZY_DEMO_DIR:-out/demo}
mkdir -p "$out"
snap="$out/demo-index.snap"
demo=("$bin/uffdlazy-demo-index" --mib "${UFFDLAZY_DEMO_MIB:-256}")

ready_ms() { sed -n 's/.*ready in \([0-9.]*\) ms.*/\1/p' "$1"; }
# Ready plus the lookups: what a user waits for before the first batch of answers.
answered_ms() { awk '/ready in/ {r = $0; sub(/.*ready in /, "", r); sub(/ ms.*/, "", r)}
                     /lookups in/ {q = $0; sub(/.*lookups in /, "", q); sub(/ ms.*/, "", q)}
                     END {print r + q}' "$1"; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "== 1. cold start, no shim"
"${demo[@]}" | tee "$out/cold.txt"
echo
echo "== 2. record: cold start under uffdlazy, snapshot at exit"
"$bin/uffdlazy" record -o "$snap" -- "${demo[@]}"
echo
echo "== 3. verify the snapshot"
"$bin/uffdlazy" verify "$snap"
echo
echo "== 4. restore: the index comes back lazily"
"$bin/uffdlazy" restore "$snap" --stats --report "$out/restore.json" -- "${demo[@]}" | tee "$out/restored.txt"
"$bin/uffdlazy" plot "$out/restore.json" -o "$out/restore.svg"
echo
echo "== 5. side by side (3 runs each)"
for i in 1 2 3; do
  "${demo[@]}" >"$out/cold.$i.txt"
  "$bin/uffdlazy" restore "$snap" -- "${demo[@]}" >"$out/restored.$i.txt" 2>/dev/null
done
cold=$(for i in 1 2 3; do ready_ms "$out/cold.$i.txt"; done | median)
restored=$(for i in 1 2 3; do ready_ms "$out/restored.$i.txt"; done | median)
cold_answered=$(for i in 1 2 3; do answered_ms "$out/cold.$i.txt"; done | median)
restored_answered=$(for i in 1 2 3; do answered_ms "$out/restored.$i.txt"; done | median)
pages=$("$bin/uffdlazy" inspect "$snap" --json | sed -n 's/.*"totals":{[^}]*"pages":\([0-9]*\).*/\1/p')
served=$(sed -n 's/.*"pages_served": *\([0-9]*\).*/\1/p' "$out/restore.json" | head -1)
awk -v c="$cold" -v r="$restored" -v p="$pages" -v s="$served" -v ca="$cold_answered" -v ra="$restored_answered" 'BEGIN {
  printf "time to ready: cold %.1f ms, restored %.2f ms: %.0fx sooner\n", c, r, c / r
  printf "ready and 2000 lookups answered: cold %.1f ms, restored %.1f ms: %.1fx sooner\n", ca, ra, ca / ra
  printf "pages touched by the restored run: %d of %d in the snapshot (%.1f%%)\n", s, p, 100 * s / p
}'
echo "fault latency of the restored run (monitor's view):"
"$bin/uffdlazy" report "$out/restore.json" | sed -n '/fault latency/,/^$/p'
echo "report: $out/restore.json, plot: $out/restore.svg, snapshot: $snap"
