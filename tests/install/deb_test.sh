#!/usr/bin/env bash
# The .deb: `cpack -G DEB` builds it; its dependencies are runtime libraries only; it installs
# with `dpkg -i` (dependencies checked against the system's packages), gives a working uffdlazy
# with its man pages and completion, and `dpkg -r` removes every file it installed. The system
# is not touched: dpkg runs in a chroot whose root is an overlay of / on a tmpfs, in a mount
# namespace of its own, so the test may run beside anything else using dpkg.
#
#   tests/install/deb_test.sh BUILD_DIR
#
# Needs root (mount namespace, overlay, chroot) and dpkg-dev (dpkg-shlibdeps). Run by ctest.
set -euo pipefail
# No `grep -q` at the end of a pipe: it stops reading at its match, the writer still writing then
# dies of SIGPIPE, and pipefail fails the line (it did, now and then). grep >/dev/null reads it all.

fail() { echo "deb_test: FAILED: $*" >&2; exit 1; }
step() { echo "deb_test: $*"; }

if [[ ${1:-} != --chroot ]]; then
  build=$(cd "$1" && pwd)
  [[ $(id -u) == 0 ]] || fail "needs root (a chroot on an overlay of /, in a mount namespace)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/uffdlazy-deb.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT

  step "cpack -G DEB"
  (cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >cpack.log 2>&1) ||
    { cat "$tmp/cpack.log"; fail "cpack -G DEB"; }
  debs=("$tmp"/pkg/*.deb)
  ((${#debs[@]} == 1)) && [[ -f ${debs[0]} ]] || fail "cpack made no single .deb: $(ls "$tmp/pkg")"
  deb=${debs[0]}
  [[ $(dpkg-deb -f "$deb" Package) == uffdlazy ]] || fail "the package is not named uffdlazy"

  depends=$(dpkg-deb -f "$deb" Depends)
  step "Depends: $depends"
  [[ $depends == *libc6* ]] || fail "no dependency on libc6: '$depends'"
  IFS=',' read -ra deps <<<"$depends"
  for d in "${deps[@]}"; do
    name=$(sed -E 's/^ *([^ (|]+).*/\1/' <<<"$d")
    [[ $name == lib* && $name != *-dev ]] || fail "'$name' is not a runtime library (Depends: $depends)"
  done

  contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
  for f in ./usr/bin/uffdlazy ./usr/lib/uffdlazy/libuffdlazy.so ./usr/libexec/uffdlazy/uffdlazy-restorer \
           ./usr/share/man/man1/uffdlazy.1.gz ./usr/share/man/man7/uffdlazy-environment.7.gz \
           ./usr/share/bash-completion/completions/uffdlazy ./usr/share/zsh/vendor-completions/_uffdlazy; do
    grep -qxF "$f" <<<"$contents" || grep -qxF "${f%.gz}" <<<"$contents" || fail "the package lacks $f:
$contents"
  done

  # A root to install into: the system, copy-on-write.
  mkdir "$tmp/ovl"
  cp "$deb" "$build/bin/uffdlazy-demo-index" "$0" "$tmp/"
  unshare --mount --propagation private -- bash -c '
    set -e
    ovl=$1/ovl
    mount -t tmpfs -o size=512m none "$ovl"
    mkdir "$ovl/upper" "$ovl/work" "$ovl/root"
    mount -t overlay overlay -o lowerdir=/,upperdir="$ovl/upper",workdir="$ovl/work" "$ovl/root"
    mount -t proc proc "$ovl/root/proc"
    mount --rbind /dev "$ovl/root/dev"
    mount -t tmpfs none "$ovl/root/tmp"
    mkdir "$ovl/root/tmp/t"
    cp "$1"/*.deb "$1/uffdlazy-demo-index" "$1/deb_test.sh" "$ovl/root/tmp/t/"
    exec chroot "$ovl/root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp/t LANG=C.UTF-8 \
      bash /tmp/t/deb_test.sh --chroot /tmp/t' _ "$tmp"
  exit
fi

cd "$2"
deb=$(ls ./*.deb)
step "dpkg -i"
! command -v uffdlazy >/dev/null || fail "uffdlazy is already installed on this system: $(command -v uffdlazy)"
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >dpkg-i.log 2>&1 || { cat dpkg-i.log; fail "dpkg -i"; }
dpkg -L uffdlazy | sort >files
[[ $(command -v uffdlazy) == /usr/bin/uffdlazy ]] || fail "uffdlazy is not /usr/bin/uffdlazy"
uffdlazy --version | grep -E '^uffdlazy [0-9]' >/dev/null || fail "uffdlazy --version"

step "man pages and completion"
warnings=$(MANWIDTH=80 man --warnings uffdlazy 2>&1 >/dev/null)
[[ -z $warnings ]] || fail "man uffdlazy warns: $warnings"
MANWIDTH=80 man uffdlazy-environment | grep UFFDLAZY_PREFETCH >/dev/null || fail "man uffdlazy-environment"
MANWIDTH=80 man libuffdlazy | grep UFFDLAZY_PREFETCH >/dev/null || fail "man libuffdlazy"
reply=$(bash -c 'source /usr/share/bash-completion/completions/uffdlazy; COMP_LINE="uffdlazy rec"
                 COMP_POINT=${#COMP_LINE}; COMP_WORDS=(uffdlazy rec); COMP_CWORD=1; _uffdlazy; echo "${COMPREPLY[*]}"')
[[ $reply == record ]] || fail "bash completion of 'uffdlazy rec' offered '$reply'"

step "run, record, restore"
uffdlazy run --stats -- /bin/true 2>run.err || { cat run.err; fail "uffdlazy run"; }
demo=(./uffdlazy-demo-index --mib 8)
uffdlazy record -o demo.snap -- "${demo[@]}" >/dev/null 2>record.err || { cat record.err; fail "record"; }
uffdlazy restore demo.snap -- "${demo[@]}" >restore.out 2>restore.err || { cat restore.err; fail "restore"; }
grep -q 'restored start' restore.out || fail "restore did not restore: $(cat restore.out restore.err)"

step "dpkg -r"
dpkg -r uffdlazy >dpkg-r.log 2>&1 || { cat dpkg-r.log; fail "dpkg -r"; }
[[ $(dpkg-query -W -f='${Status}' uffdlazy 2>/dev/null) != *" installed" ]] || fail "still installed after dpkg -r"
while read -r f; do
  [[ -d $f ]] && continue  # directories shared with other packages stay
  [[ ! -e $f ]] || fail "dpkg -r left $f"
done <files
hash -r
! command -v uffdlazy >/dev/null || fail "uffdlazy is still on PATH after dpkg -r"
step "ok"
