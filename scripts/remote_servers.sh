#!/usr/bin/env bash
# The servers the remote tests use, as one ctest fixture (tests/CMakeLists.txt):
#
#   scripts/remote_servers.sh start DIR   radosgw + Ceph (scripts/s3_server.sh, in DIR/s3) and
#                                         nginx serving DIR/www (scripts/http_server.sh, in
#                                         DIR/http); DIR/env holds both servers' settings
#   scripts/remote_servers.sh stop DIR    stop both, by the pids they wrote
#
# A server that cannot start fails the start (and so every remote test: they require it).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -eq 2 && ($1 == start || $1 == stop) ]] || { echo "usage: scripts/remote_servers.sh start|stop DIR" >&2; exit 2; }
dir=$(mkdir -p "$2" && cd "$2" && pwd)
if [[ $1 == stop ]]; then
  status=0
  scripts/http_server.sh stop "$dir/http" || status=1
  scripts/s3_server.sh stop "$dir/s3" || status=1
  exit $status
fi
rm -f "$dir/env"
rm -rf "$dir/www"
mkdir -p "$dir/www"
if ! scripts/http_server.sh start "$dir/http" "$dir/www"; then
  exit 1
fi
if ! scripts/s3_server.sh start "$dir/s3"; then
  scripts/http_server.sh stop "$dir/http"
  exit 1
fi
{ cat "$dir/s3/env"; cat "$dir/http/env"; echo "UFFDLAZY_TEST_HTTP_ROOT=$dir/www"; } >"$dir/env.tmp"
mv "$dir/env.tmp" "$dir/env"
