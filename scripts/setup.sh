#!/usr/bin/env bash
# Installs what uffdlazy needs to build, test and run its demo. Idempotent: it only calls apt-get
# for packages that are missing, so a second run changes nothing and needs no network.
set -euo pipefail

# clang-14 and its runtimes (libclang-rt-14-dev: ASan, UBSan, TSan, libFuzzer) build the sanitized
# unit tests and the fuzzers (scripts/test.sh, scripts/fuzz.sh).
# libcurl4-openssl-dev: the CLI's transfers (S3 and HTTP, SigV4 signing, libcrypto's hashes).
# ceph-mon ceph-osd radosgw ceph-common and nginx: the real S3 store and HTTP server the remote
# tests start on 127.0.0.1 (scripts/s3_server.sh, scripts/http_server.sh); curl and iproute2 too.
packages=(g++ cmake make libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev sqlite3 python3 nodejs
          gawk xz-utils perl clang-14 libclang-rt-14-dev libcurl4-openssl-dev curl iproute2
          ceph-mon ceph-osd radosgw ceph-common nginx)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  # Installing Ceph or nginx would start their system services: keep every service from starting
  # (a policy-rc.d that refuses), unless the machine already has a policy of its own.
  policy=/usr/sbin/policy-rc.d
  made_policy=
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=1
  fi
  trap '[[ -n $made_policy ]] && $SUDO rm -f "$policy"' EXIT
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
