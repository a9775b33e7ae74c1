#!/usr/bin/env bash
# The remote demo (issue 16): the demo's snapshot served lazily from a real S3 store. Sets up and
# builds uffdlazy, starts a local S3 store (radosgw on a single-node Ceph, scripts/s3_server.sh,
# on 127.0.0.1, in a temporary directory; stopped by its pids when the script ends, however it
# ends), then:
#   1. records the demo program (the 256 MiB in-memory index of scripts/demo.sh) to a local file;
#   2. restores the local file, recording the working set of that run (ready + 2000 lookups);
#   3. pushes the snapshot to the store (`uffdlazy push FILE s3://BUCKET/KEY`);
#   4. restores from the s3:// URL with an empty host cache: on demand, with the working set
#      replayed, and with the default background fill; then again with the cache the last run
#      left (warm);
# and prints the runs side by side (one run each): time to ready (the program's own), total (the
# whole `uffdlazy restore` command, fetcher start and snapshot open included), bytes fetched and
# requests (the fetcher's --stats line), blocking faults, and whether the program's output is the
# local restore's (its answers and answer digest; the timings masked).
#
# Idempotent: every run starts a new, empty store and cache; out/demo-remote/ is overwritten.
#   UFFDLAZY_BUILD_DIR=dir  UFFDLAZY_DEMO_DIR=dir (default out/demo-remote)  UFFDLAZY_DEMO_MIB=N
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { printf '[%d:%02d] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*"; }
echo "uffdlazy remote demo. A first run installs the missing Debian packages (scripts/setup.sh"
echo "remote: the build's, and Ceph's for the local S3 store) and builds the CLI, the shim, the"
echo "fetcher and the demo program (see scripts/demo.sh for how long that takes). The demo itself"
echo "takes about a minute: the S3 store starts in a few seconds, more on a loaded machine."
step "packages (scripts/setup.sh remote)"
scripts/setup.sh remote
step "building uffdlazy, its fetcher and the demo program (scripts/build.sh)"
scripts/build.sh uffdlazy uffdlazy_preload uffdlazy-fetch uffdlazy-demo-index
build_dir=${UFFDLAZY_BUILD_DIR:-build}
bin=$(cd "$build_dir/bin" && pwd)
out=${UFFDLAZY_DEMO_DIR:-out/demo-remote}
mib=${UFFDLAZY_DEMO_MIB:-256}
# The shim refuses UFFDLAZY_* variables it does not know (typos): this script's own stop here.
unset UFFDLAZY_BUILD_DIR UFFDLAZY_DEMO_DIR UFFDLAZY_DEMO_MIB
rm -rf "$out"
mkdir -p "$out"
snap="$out/demo-index.snap"
ws="$out/demo-index.ws"
demo=("$bin/uffdlazy-demo-index" --mib "$mib")

# The store and the host cache live in a temporary directory, removed at the end with the store
# stopped first (by the pids scripts/s3_server.sh wrote, never by name).
work=$(mktemp -d "${TMPDIR:-/tmp}/uffdlazy-demo-remote.XXXXXX")
cleanup() {
  scripts/s3_server.sh stop "$work/s3" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export UFFDLAZY_CACHE_DIR="$work/cache"

step "starting the local S3 store (scripts/s3_server.sh start, radosgw on 127.0.0.1)"
scripts/s3_server.sh start "$work/s3"
# The store's settings: endpoint and keys, as a user's AWS_* variables would give them.
while IFS= read -r line; do
  case $line in AWS_*=*) export "${line?}" ;; esac
done <"$work/s3/env"
bucket=$(sed -n 's/^UFFDLAZY_TEST_BUCKET=//p' "$work/s3/env")
url="s3://$bucket/demo/demo-index.snap"
echo "    AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL, bucket $bucket"

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
# run NAME command...: one run, its output in NAME.txt, its stderr (the --stats lines) in NAME.err,
# the whole command's wall time in NAME.ms.
run() {
  local name=$1 t0 status=0
  shift
  t0=$(now_ms)
  "$@" >"$out/$name.txt" 2>"$out/$name.err" || status=$?
  echo $(($(now_ms) - t0)) >"$out/$name.ms"
  if ((status != 0)); then
    echo "demo_remote.sh: $name failed (exit $status):" >&2
    cat "$out/$name.txt" "$out/$name.err" >&2
    exit 1
  fi
}

step "1. record: a cold start of the demo program under uffdlazy, snapshot at exit"
"$bin/uffdlazy" record -o "$snap" -- "${demo[@]}"
echo
step "2. restore the local file, recording the run's working set"
run local "$bin/uffdlazy" restore "$snap" --ws-record "$ws" --stats -- "${demo[@]}"
cat "$out/local.txt"
echo
step "3. push the snapshot to the store"
"$bin/uffdlazy" push "$snap" "$url"
echo
step "4. restore from $url"
rm -rf "$UFFDLAZY_CACHE_DIR"
echo "    empty host cache, on demand (--prefetch none)"
run demand "$bin/uffdlazy" restore "$url" --prefetch none --stats -- "${demo[@]}"
rm -rf "$UFFDLAZY_CACHE_DIR"
echo "    empty host cache, the working set replayed (--ws FILE --prefetch ws)"
run ws "$bin/uffdlazy" restore "$url" --ws "$ws" --prefetch ws --stats -- "${demo[@]}"
rm -rf "$UFFDLAZY_CACHE_DIR"
echo "    empty host cache, background fill (the default)"
run all "$bin/uffdlazy" restore "$url" --stats -- "${demo[@]}"
echo "    warm host cache (what the last run fetched), background fill"
run warm "$bin/uffdlazy" restore "$url" --stats -- "${demo[@]}"
echo "    the local file again, for the same conditions"
run local2 "$bin/uffdlazy" restore "$snap" --stats -- "${demo[@]}"
echo

ready_ms() { sed -n 's/.*ready in \([0-9.]*\) ms.*/\1/p' "$out/$1.txt"; }
# The program's output with its timings masked: what must not change with where the pages came from.
answers() { sed 's/ in [0-9.]* ms/ in - ms/' "$out/$1.txt"; }
remote_field() { sed -n "s/.*uffdlazy: remote .*$2=\\([0-9]*\\).*/\\1/p" "$out/$1.err" | tail -1; }
# Blocking faults: the restore account's requests (the fetcher's own line excluded).
faults() { grep -v 'uffdlazy: remote ' "$out/$1.err" | sed -n 's/.* requests=\([0-9]*\).*/\1/p' | head -1; }
size=$(stat -c %s "$snap")
same=yes
row() {  # label, name
  local f r b ok
  b=$(remote_field "$2" "bytes fetched")
  r=$(remote_field "$2" requests)
  f=$(faults "$2")
  if [[ $2 == local* ]]; then b=0 r=-; fi
  if [[ $(answers "$2") == "$(answers local)" ]]; then ok=yes; else ok=NO; same=no; fi
  printf "%-46s %8.1f ms %7d ms %15s %6s %9s %10s\n" "$1" "$(ready_ms "$2")" "$(cat "$out/$2.ms")" \
    "$(awk -v b="${b:-0}" -v s="$size" 'BEGIN { printf "%.1f MiB %3.0f%%", b / 1048576, 100 * b / s }')" \
    "${r:--}" "${f:--}" "$ok"
}
step "5. side by side (one run each; snapshot $((size / 1048576)) MiB)"
printf "%-46s %11s %10s %15s %6s %9s %10s\n" "" "ready" "total" "bytes fetched" "reqs" "blocking" "same out"
row "local file" local2
row "s3://, cold cache, on demand" demand
row "s3://, cold cache, working set replayed" ws
row "s3://, cold cache, background fill" all
row "s3://, warm cache" warm
echo "ready: the program's own (from main); total: the whole uffdlazy restore command; bytes"
echo "fetched and requests: the fetcher's --stats line (the open's header and 4 MiB metadata suffix"
echo "included); blocking: faults the program's threads waited for; same out: the program's output"
echo "(answers and digest, timings masked) is the local restore's."
[[ $same == yes ]] || { echo "demo_remote.sh: a remote restore's output differs from the local restore's" >&2; exit 1; }
echo "outputs and --stats lines: $out/"
step "done (the S3 store is stopped on exit)"
