#!/usr/bin/env bash
# Installs what uffdlazy needs to build, test and run its demo. Idempotent: it only calls apt-get
# for packages that are missing, so a second run changes nothing and needs no network.
set -euo pipefail

# clang-14 and its runtimes (libclang-rt-14-dev: ASan, UBSan, TSan, libFuzzer) build the sanitized
# unit tests and the fuzzers (scripts/test.sh, scripts/fuzz.sh).
packages=(g++ cmake make libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev sqlite3 python3 nodejs
          gawk xz-utils perl clang-14 libclang-rt-14-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
