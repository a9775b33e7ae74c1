#!/usr/bin/env bash
# A real S3 store on 127.0.0.1 for the remote tests, the remote bench and demo: a single-node Ceph
# cluster (one monitor, one OSD on the in-memory memstore backend) and its S3 gateway, radosgw,
# from Debian's packages (scripts/setup.sh installs them). Not a mock: radosgw checks every
# SigV4 signature, answers ranges, ETags, If-Match, multipart uploads as production stores do.
#
#   scripts/s3_server.sh start DIR   bring it up with everything in DIR (config, data, logs,
#                                    pid files); writes DIR/env, lines of NAME=VALUE for the
#                                    clients (AWS_ENDPOINT_URL, keys, AWS_REGION, and the bucket
#                                    UFFDLAZY_TEST_BUCKET, created empty)
#   scripts/s3_server.sh stop DIR    stop the daemons started from DIR, by the pids it wrote
#                                    (TERM, then KILL), never by name
#   scripts/s3_server.sh stop-gateway DIR / start-gateway DIR
#                                    stop only radosgw (the store keeps its objects), start it
#                                    again on the same port: a server that goes away and comes
#                                    back, for the fault tests
#
# The ports are free ones, checked just before use, outside 6800-7300 (where the OSD binds).
# Start-up takes a few seconds on a quiet machine, more under load: each wait below is bounded
# (UFFDLAZY_S3_START_TIMEOUT seconds, default 240, for the whole start). The data lives in
# memory: a stopped store is gone, and each start begins empty. See shared notes ceph-s3.md.
set -euo pipefail

usage() { echo "usage: scripts/s3_server.sh start|stop|stop-gateway|start-gateway DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
conf=$dir/ceph.conf
daemons=(radosgw osd mon)

# Stops the daemon whose pid file is DIR/NAME.pid, if that pid still runs the program it was
# started as (a pid file left by a crashed run may name a reused pid by now).
stop_one() {
  local name=$1 pidfile=$dir/$1.pid pid exe want
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  rm -f "$pidfile"
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  case $name in mon) want=ceph-mon ;; osd) want=ceph-osd ;; radosgw) want=radosgw ;; esac
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  [[ ${exe##*/} == "$want" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  # The OSD may ignore TERM while it shuts down its store.
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

stop_all() {
  local d
  for d in "${daemons[@]}"; do stop_one "$d"; done
}

if [[ $action == stop ]]; then
  stop_all
  exit 0
fi
if [[ $action == stop-gateway ]]; then
  stop_one radosgw
  exit 0
fi
[[ $action == start || $action == start-gateway ]] || usage

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl python3; do
  command -v "$tool" >/dev/null || { echo "s3_server.sh: $tool is not installed (run scripts/setup.sh)" >&2; exit 1; }
done

if [[ $action == start-gateway ]]; then
  [[ -f $conf ]] || { echo "s3_server.sh: no store was started in $dir" >&2; exit 1; }
  port=$(sed -n 's/^rgw frontends = beast endpoint=127.0.0.1:\([0-9]*\).*/\1/p' "$conf")
  stop_one radosgw
  setsid radosgw -f -c "$conf" -n client.rgw.s3 >>"$dir/log/radosgw.out" 2>&1 </dev/null &
  echo $! >"$dir/radosgw.pid"
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/" && exit 0
    kill -0 "$(<"$dir/radosgw.pid")" 2>/dev/null || break
    sleep 0.2
  done
  echo "s3_server.sh: radosgw did not come back on port $port" >&2
  exit 1
fi

stop_all  # a previous start from the same directory
rm -rf "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/env" "$dir/monmap"
mkdir -p "$dir/mon" "$dir/osd/ceph-0" "$dir/run" "$dir/log" "$dir/crash"

deadline=$((SECONDS + ${UFFDLAZY_S3_START_TIMEOUT:-240}))
fail() {
  echo "s3_server.sh: $*" >&2
  local f
  for f in "$dir"/log/*.log; do
    [[ -f $f ]] && { echo "--- last lines of $f" >&2; tail -n 5 "$f" >&2; }
  done
  stop_all
  exit 1
}
# Waits until the command succeeds, or fails the start once the deadline has passed.
wait_for() {
  local what=$1
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.2
  done
}

# A free TCP port on 127.0.0.1 outside the OSD's range. The kernel picks it; a short race with
# another program remains, which the readiness checks below would catch as a failure to start.
free_port() {
  python3 - <<'EOF'
import socket
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    if not 6800 <= p <= 7300:
        print(p)
        break
EOF
}
mon_port=$(free_port)
rgw_port=$(free_port)
while [[ $rgw_port == "$mon_port" ]]; do rgw_port=$(free_port); done
fsid=$(cat /proc/sys/kernel/random/uuid)

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
ms bind msgr1 = false
ms bind ipv6 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
run dir = $dir/run
log file = $dir/log/\$name.log
crash dir = $dir/crash
admin socket = $dir/run/\$name.asok
keyring = $dir/keyring
[mon]
mon data = $dir/mon/\$cluster-\$id
paxos propose interval = 0.1
[osd]
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = ${UFFDLAZY_S3_MEMORY:-3221225472}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
osd op num shards = 2
osd op num threads per shard = 1
[client.rgw.s3]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw enable usage log = false
rgw dynamic resharding = false
rgw enable lc threads = false
rgw data = $dir/rgw
EOF
: >"$dir/keyring"
mkdir -p "$dir/rgw"

ceph_cli() { timeout 20 ceph -c "$conf" "$@"; }

# Each daemon runs in the foreground of its own session (setsid), its pid recorded at once.
launch() {
  local name=$1
  shift
  setsid "$@" >>"$dir/log/$name.out" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}

monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null 2>&1 || fail "ceph-mon --mkfs failed"
launch mon ceph-mon -f -c "$conf" -i a
wait_for "the Ceph monitor" ceph_cli mon stat

osd_uuid=$(cat /proc/sys/kernel/random/uuid)
# The same uuid gives the same id, so the command is retried freely (a loaded monitor may not
# answer within one try).
osd_id=
new_osd() { osd_id=$(ceph_cli osd new "$osd_uuid"); }
until new_osd; do
  ((SECONDS < deadline)) || fail "ceph osd new failed"
  sleep 0.5
done
[[ $osd_id == 0 ]] || fail "unexpected OSD id '$osd_id'"
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1 || fail "ceph-osd --mkfs failed"
launch osd ceph-osd -f -c "$conf" -i 0
osd_up() { ceph_cli osd dump | grep -q '^osd\.0 up'; }
wait_for "the OSD" osd_up

launch radosgw radosgw -f -c "$conf" -n client.rgw.s3
wait_for "radosgw on port $rgw_port" curl -sf -o /dev/null "http://127.0.0.1:$rgw_port/"

access_key=uffdlazytest$RANDOM
secret_key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
timeout 60 radosgw-admin -c "$conf" -n client.rgw.s3 user create --uid=uffdlazy --display-name=uffdlazy \
  --access-key="$access_key" --secret-key="$secret_key" >/dev/null 2>&1 || fail "radosgw-admin user create failed"

bucket=uffdlazy-test
endpoint=http://127.0.0.1:$rgw_port
# The bucket the tests use. A fresh user's first request may race the gateway's user cache: retry.
make_bucket() {
  curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$endpoint/$bucket" -o /dev/null
}
wait_for "the test bucket" make_bucket

cat >"$dir/env" <<EOF
AWS_ENDPOINT_URL=$endpoint
AWS_ACCESS_KEY_ID=$access_key
AWS_SECRET_ACCESS_KEY=$secret_key
AWS_REGION=us-east-1
UFFDLAZY_TEST_BUCKET=$bucket
EOF
echo "s3_server.sh: radosgw on $endpoint (bucket $bucket), started in $SECONDS s" >&2
