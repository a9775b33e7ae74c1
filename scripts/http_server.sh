#!/usr/bin/env bash
# A plain HTTP server on 127.0.0.1 for the remote tests, bench and demo: Debian's nginx with a
# configuration of its own (no system service is touched), serving ROOT read-only with Range
# requests, ETags and keep-alive, as a CDN or any static file server does.
#
#   scripts/http_server.sh start DIR ROOT   serve ROOT; writes DIR/env with UFFDLAZY_TEST_HTTP
#                                           (http://127.0.0.1:PORT) and DIR/nginx.pid
#   scripts/http_server.sh stop DIR         stop it by the pid it wrote (TERM, then KILL)
set -euo pipefail

usage() { echo "usage: scripts/http_server.sh start DIR ROOT | stop DIR" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
pidfile=$dir/nginx.pid

stop() {
  [[ -f $pidfile ]] || return 0
  local pid exe
  pid=$(<"$pidfile")
  rm -f "$pidfile"
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  [[ ${exe##*/} == nginx ]] || return 0
  # The master stops its workers on TERM.
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

case $action in
  stop) [[ $# -eq 2 ]] || usage; stop; exit 0 ;;
  start) [[ $# -eq 3 ]] || usage ;;
  *) usage ;;
esac
root=$(cd "$3" && pwd)
command -v nginx >/dev/null || { echo "http_server.sh: nginx is not installed (run scripts/setup.sh)" >&2; exit 1; }
command -v curl >/dev/null || { echo "http_server.sh: curl is not installed (run scripts/setup.sh)" >&2; exit 1; }
stop
mkdir -p "$dir/tmp" "$dir/log"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $pidfile;
error_log $dir/log/error.log warn;
events { worker_connections 256; }
http {
  access_log $dir/log/access.log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$port;
    root $root;
    location / { }
  }
}
EOF
setsid nginx -c "$dir/nginx.conf" -p "$dir" >>"$dir/log/nginx.out" 2>&1 </dev/null &
echo $! >"$pidfile"
for _ in $(seq 300); do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "UFFDLAZY_TEST_HTTP=http://127.0.0.1:$port" >"$dir/env"
    echo "http_server.sh: nginx on http://127.0.0.1:$port serving $root" >&2
    exit 0
  fi
  kill -0 "$(<"$pidfile")" 2>/dev/null || break
  sleep 0.1
done
echo "http_server.sh: nginx did not start:" >&2
tail -n 5 "$dir/log/error.log" "$dir/log/nginx.out" >&2 2>/dev/null || true
stop
exit 1
