#!/usr/bin/env bash
# Installs what uffdlazy needs (Debian packages). Idempotent: it only calls apt-get for packages
# that are missing, so a second run changes nothing and needs no network.
#
#   scripts/setup.sh build   what building needs (the demo: scripts/demo.sh)
#   scripts/setup.sh         that, and what the whole test suite needs (scripts/test.sh)
set -euo pipefail

# Building: the compiler, CMake, the test and benchmark libraries (CMake configures them), xxHash,
# and scdoc, which renders the manual pages.
build=(g++ cmake make libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev scdoc python3)
# Testing: the real programs the end-to-end tests run; man-db (the pages must render without a
# warning), zsh (the zsh completion must parse) and dpkg-dev (cpack's dpkg-shlibdeps, for the .deb
# test); clang-14 and its runtimes (libclang-rt-14-dev: ASan, UBSan, TSan, libFuzzer) build the
# sanitized unit tests and the fuzzers (scripts/test.sh, scripts/fuzz.sh).
tests=(sqlite3 nodejs gawk xz-utils perl man-db zsh dpkg-dev clang-14 libclang-rt-14-dev)

case ${1:-all} in
  build) packages=("${build[@]}") ;;
  all) packages=("${build[@]}" "${tests[@]}") ;;
  *) echo "usage: scripts/setup.sh [build]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]} (apt-get; a few minutes on a fresh machine)"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
