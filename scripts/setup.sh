#!/usr/bin/env bash
# Installs what uffdlazy needs (Debian packages). Idempotent: it only calls apt-get for packages
# that are missing, so a second run changes nothing and needs no network.
#
#   scripts/setup.sh build   what building needs (the demo: scripts/demo.sh)
#   scripts/setup.sh remote  that, and the local S3 store (the remote demo: scripts/demo_remote.sh)
#   scripts/setup.sh         that, and what the whole test suite needs (scripts/test.sh)
set -euo pipefail

# Building: the compiler, CMake, the test and benchmark libraries (CMake configures them), xxHash,
# libcurl4-openssl-dev (the CLI's transfers: S3 and HTTP, SigV4 signing, libcrypto's hashes),
# scdoc, which renders the manual pages, and dpkg-dev (dpkg-shlibdeps: `cpack -G DEB` computes the
# .deb's dependencies with it).
build=(g++ cmake make libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev libcurl4-openssl-dev scdoc
       dpkg-dev python3)
# Testing: the real programs the end-to-end tests run; man-db (the pages must render without a
# warning) and zsh (the zsh completion must parse); clang-14 and its runtimes (libclang-rt-14-dev: ASan, UBSan, TSan, libFuzzer) build the
# sanitized unit tests and the fuzzers (scripts/test.sh, scripts/fuzz.sh); ceph-mon ceph-osd radosgw
# ceph-common and nginx: the real S3 store and HTTP server the remote tests start on 127.0.0.1
# (scripts/s3_server.sh, scripts/http_server.sh), with curl and iproute2.
tests=(sqlite3 nodejs gawk xz-utils perl man-db zsh clang-14 libclang-rt-14-dev
       curl iproute2 ceph-mon ceph-osd radosgw ceph-common nginx)

# The local S3 store alone (scripts/s3_server.sh): Ceph's monitor, OSD and gateway, and curl.
remote=(curl ceph-mon ceph-osd radosgw ceph-common)

case ${1:-all} in
  build) packages=("${build[@]}") ;;
  remote) packages=("${build[@]}" "${remote[@]}") ;;
  all) packages=("${build[@]}" "${tests[@]}") ;;
  *) echo "usage: scripts/setup.sh [build|remote]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]} (apt-get; a few minutes on a fresh machine)"
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
