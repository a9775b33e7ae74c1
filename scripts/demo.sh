#!/usr/bin/env bash
# The built-in demo. Sets up and builds uffdlazy, then:
#   1. starts the demo program (a 256 MiB in-memory index) cold, without the shim;
#   2. records it: the same cold start under `uffdlazy record`, snapshot written at exit;
#   3. verifies the snapshot;
#   4. restores it: the program finds its index already in memory, page by page on first touch,
#      and records the working set of that run (the pages ready + 2000 lookups touch);
#   5. restores it again, replaying that working set: those pages are in place before main() reads
#      them;
# and compares time-to-ready and ready + 2000 lookups (median of 3 runs each, side by side): cold,
# restored on demand, restored with everything filled in the background (the default), and
# restored with the working set replayed; with the blocking faults of each restore.
#
# Builds only what it runs (the CLI, the shim, the restorer, the demo program), with a line per
# file; every step says how long the run has taken so far.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { printf '[%d:%02d] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*"; }
echo "uffdlazy demo. A first run installs the missing Debian packages (scripts/setup.sh build) and"
echo "builds the CLI, the shim and the demo program: about 2.5 CPU-minutes of compiling, a few minutes"
echo "on an idle 2-core machine, up to 20 or more on a busy one. The demo itself takes about a minute."
echo "Every step prints its elapsed time; the build prints a line per file."
step "packages (scripts/setup.sh build)"
scripts/setup.sh build
step "building uffdlazy and the demo program (scripts/build.sh)"
scripts/build.sh uffdlazy uffdlazy-demo-index
build_dir=${UFFDLAZY_BUILD_DIR:-build}
bin="$build_dir/bin"
out=${UFFDLAZY_DEMO_DIR:-out/demo}
mkdir -p "$out"
snap="$out/demo-index.snap"
ws="$out/demo-index.ws"
demo=("$bin/uffdlazy-demo-index" --mib "${UFFDLAZY_DEMO_MIB:-256}")
# The shim refuses UFFDLAZY_* variables it does not know (typos): this script's own stop here.
unset UFFDLAZY_BUILD_DIR UFFDLAZY_DEMO_DIR UFFDLAZY_DEMO_MIB

ready_ms() { sed -n 's/.*ready in \([0-9.]*\) ms.*/\1/p' "$1"; }
# Ready plus the lookups: what a user waits for before the first batch of answers.
answered_ms() { awk '/ready in/ {r = $0; sub(/.*ready in /, "", r); sub(/ ms.*/, "", r)}
                     /lookups in/ {q = $0; sub(/.*lookups in /, "", q); sub(/ ms.*/, "", q)}
                     END {print r + q}' "$1"; }
# Blocking faults: the fault messages the program's threads waited for.
requests() { sed -n 's/.* requests=\([0-9]*\).*/\1/p' "$1" | head -1; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

step "1. cold start, no shim"
"${demo[@]}" | tee "$out/cold.txt"
echo
step "2. record: cold start under uffdlazy, snapshot at exit"
"$bin/uffdlazy" record -o "$snap" -- "${demo[@]}"
echo
step "3. verify the snapshot"
"$bin/uffdlazy" verify "$snap"
echo
step "4. restore: the index comes back lazily; the pages this run touches are its working set"
"$bin/uffdlazy" restore "$snap" --ws-record "$ws" --stats --report "$out/restore.json" -- "${demo[@]}" |
  tee "$out/restored.txt"
"$bin/uffdlazy" plot "$out/restore.json" -o "$out/restore.svg"
echo
step "5. restore with the working set replayed: its pages are in place before main() reads them"
"$bin/uffdlazy" restore "$snap" --ws "$ws" --prefetch ws --stats -- "${demo[@]}"
echo
step "6. side by side (3 runs each)"
for i in 1 2 3; do
  step "   run $i of 3: cold, on demand, background fill, working set"
  "${demo[@]}" >"$out/cold.$i.txt"
  "$bin/uffdlazy" restore "$snap" --prefetch none --stats -- "${demo[@]}" >"$out/lazy.$i.txt" 2>"$out/lazy.$i.err"
  "$bin/uffdlazy" restore "$snap" --stats -- "${demo[@]}" >"$out/all.$i.txt" 2>"$out/all.$i.err"
  "$bin/uffdlazy" restore "$snap" --ws "$ws" --prefetch ws --stats -- "${demo[@]}" >"$out/ws.$i.txt" 2>"$out/ws.$i.err"
done
row() {  # label, file prefix, with faults?
  local r a f=-
  r=$(for i in 1 2 3; do ready_ms "$out/$2.$i.txt"; done | median)
  a=$(for i in 1 2 3; do answered_ms "$out/$2.$i.txt"; done | median)
  [[ $3 == yes ]] && f=$(for i in 1 2 3; do requests "$out/$2.$i.err"; done | median)
  printf "%-44s %10.1f ms %14.1f ms %16s\n" "$1" "$r" "$a" "$f"
}
printf "%-44s %13s %17s %16s\n" "" "ready" "ready + lookups" "blocking faults"
row "cold start (builds the index)" cold no
row "restored, on demand (--prefetch none)" lazy yes
row "restored, background fill (the default)" all yes
row "restored, working set replayed (--prefetch ws)" ws yes
pages=$("$bin/uffdlazy" inspect "$snap" --json | sed -n 's/.*"totals":{[^}]*"pages":\([0-9]*\).*/\1/p')
# The recording run served pages on demand only: what it served is what it touched.
touched=$(sed -n 's/.*"pages_served": *\([0-9]*\).*/\1/p' "$out/restore.json" | head -1)
awk -v p="$pages" -v s="$touched" 'BEGIN {
  printf "pages the restored run touched (its working set): %d of %d in the snapshot (%.1f%%)\n", s, p, 100 * s / p
}'
echo "fault latency of the restored run (monitor's view):"
"$bin/uffdlazy" report "$out/restore.json" | sed -n '/fault latency/,/^$/p'
echo "report: $out/restore.json, plot: $out/restore.svg, snapshot: $snap, working set: $ws"
step "done"
