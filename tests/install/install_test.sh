#!/usr/bin/env bash
# An installed uffdlazy works on its own: `cmake --install` into a temporary prefix, the prefix
# moved elsewhere (the CLI must find its parts relative to itself), then, in a mount namespace where
# the source and build trees are hidden under empty directories and with no UFFDLAZY_* or LD_*
# variable set: --version, help, the man pages (man -l renders them without a warning), the bash
# completion, record -> verify -> restore of the demo program, and checkpoint -> resume of a test
# program, compared with its uninterrupted run.
#
#   tests/install/install_test.sh SOURCE_DIR BUILD_DIR
#
# Needs root (a mount namespace). Run by ctest (Install.*).
set -euo pipefail
# No `grep -q` at the end of a pipe: it stops reading at its match, the writer still writing then
# dies of SIGPIPE, and pipefail fails the line (it did, now and then). grep >/dev/null reads it all.

fail() { echo "install_test: FAILED: $*" >&2; exit 1; }

if [[ ${1:-} != --hidden ]]; then
  src=$(cd "$1" && pwd) build=$(cd "$2" && pwd)
  [[ $(id -u) == 0 ]] || fail "needs root, to hide the build tree in a mount namespace (unshare -m)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/uffdlazy-install.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  case $tmp/ in "$src"/* | "$build"/*) fail "the temporary directory $tmp lies inside the trees it must hide" ;; esac
  cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
  for f in bin/uffdlazy lib/uffdlazy/libuffdlazy.so libexec/uffdlazy/uffdlazy-restorer \
           share/man/man1/uffdlazy.1 share/man/man7/uffdlazy-environment.7 share/man/man7/libuffdlazy.7 \
           share/bash-completion/completions/uffdlazy share/zsh/vendor-completions/_uffdlazy; do
    [[ -f $tmp/prefix/$f ]] || fail "cmake --install did not install $f"
  done
  # Installed elsewhere than configured: the tree must not depend on where it was installed.
  mv "$tmp/prefix" "$tmp/moved"
  # The programs to run are the user's: copies outside the hidden trees.
  mkdir "$tmp/programs"
  cp "$build/bin/uffdlazy-demo-index" "$build/targets/resume_target" "$tmp/programs/"
  cp "$0" "$tmp/install_test.sh"
  # The build's own copies are out of reach: both trees are covered, and nothing in the
  # environment points anywhere.
  env -i PATH="$tmp/moved/bin:/usr/bin:/bin" HOME="$tmp" LANG=C.UTF-8 \
    unshare --mount --propagation private -- bash -c '
      mount -t tmpfs -o ro,size=4k none "$1" && { [[ $2 == "$1"/* ]] || mount -t tmpfs -o ro,size=4k none "$2"; } &&
      exec bash "$3/install_test.sh" --hidden "$3" "$1" "$2"' _ "$src" "$build" "$tmp"
  exit
fi

tmp=$2 src=$3 build=$4
cd "$tmp"
[[ ! -e $build || -z $(ls -A "$build") ]] || fail "the build tree is still visible"
bin=$(command -v uffdlazy)
[[ $bin == "$tmp/moved/bin/uffdlazy" ]] || fail "uffdlazy on PATH is $bin"
step() { echo "install_test: $*"; }

step "version and help"
uffdlazy --version | grep -E '^uffdlazy [0-9]+\.[0-9]+\.[0-9]+' >/dev/null || fail "uffdlazy --version: $(uffdlazy --version 2>&1)"
[[ $(uffdlazy version) == "$(uffdlazy --version)" ]] || fail "uffdlazy version differs from --version"
uffdlazy help restore | grep -- '--prefetch MODE' >/dev/null || fail "uffdlazy help restore"

step "man pages"
for page in man1/uffdlazy.1 man7/uffdlazy-environment.7; do
  warnings=$(MANWIDTH=80 man --warnings -l "$tmp/moved/share/man/$page" 2>&1 >/dev/null)
  [[ -z $warnings ]] || fail "man -l $page warns: $warnings"
  MANWIDTH=80 man -l "$tmp/moved/share/man/$page" 2>/dev/null | grep 'uffdlazy' >/dev/null || fail "man -l $page shows nothing"
done
MANWIDTH=80 man -M "$tmp/moved/share/man" libuffdlazy 2>&1 | grep 'UFFDLAZY_MIN_SIZE' >/dev/null || fail "man libuffdlazy"

step "bash completion"
reply=$(bash -c 'source "$1"; COMP_LINE="uffdlazy restore x --prefetch "; COMP_POINT=${#COMP_LINE}
                 COMP_WORDS=(uffdlazy restore x --prefetch ""); COMP_CWORD=4; _uffdlazy; echo "${COMPREPLY[*]}"' \
        _ "$tmp/moved/share/bash-completion/completions/uffdlazy")
[[ $reply == "none ws all" ]] || fail "completion of --prefetch offered '$reply'"

step "record, verify, inspect, restore"
demo=("$tmp/programs/uffdlazy-demo-index" --mib 16)
uffdlazy record -o demo.snap -- "${demo[@]}" >record.out 2>record.err || { cat record.err; fail "record"; }
grep -q 'cold start' record.out || fail "record: $(cat record.out)"
uffdlazy verify demo.snap | grep ': ok' >/dev/null || fail "verify"
uffdlazy inspect demo.snap | grep "executable  $tmp/programs/uffdlazy-demo-index" >/dev/null || fail "inspect: $(uffdlazy inspect demo.snap)"
uffdlazy restore demo.snap --stats -- "${demo[@]}" >restore.out 2>restore.err || { cat restore.err; fail "restore"; }
grep -q 'restored start' restore.out || fail "restore did not restore: $(cat restore.out restore.err)"
grep -q 'uffdlazy: restore .*regions matched=[1-9]' restore.err || fail "restore account: $(cat restore.err)"

step "checkpoint, inspect, resume"
# At step 2 the program asks for the checkpoint and waits for a byte of input: the checkpoint
# finds it there (raise() only asks; without the wait a loaded host let the program end first).
target=("$tmp/programs/resume_target" --mb 8 --steps 5 --pause-at 2 --log run.log --data run.data)
printf y | "${target[@]}" >reference.out 2>reference.err || fail "the reference run: $(cat reference.err)"
mv run.log reference.log && mv run.data reference.data
mkfifo input
exec 3<>input  # open, and never written: the program's read waits
uffdlazy checkpoint -o target.img -- "${target[@]}" --signal-at 2 >checkpoint.out 2>checkpoint.err <input ||
  { cat checkpoint.err; fail "checkpoint"; }
exec 3>&-
grep -q 'checkpoint .* written' checkpoint.err || fail "checkpoint: $(cat checkpoint.err)"
uffdlazy inspect target.img >inspect.out 2>inspect.err || { cat inspect.err; fail "inspect of the image"; }
grep -q '^threads' inspect.out || fail "inspect of the image shows no threads: $(head -20 inspect.out)"
printf y | uffdlazy resume target.img --stats >resumed.out 2>resumed.err || { cat resumed.err; fail "resume"; }
cat checkpoint.out resumed.out | cmp -s - reference.out || fail "checkpoint + resume printed something else than the uninterrupted run:
$(diff <(cat checkpoint.out resumed.out) reference.out)"
cmp -s run.log reference.log && cmp -s run.data reference.data || fail "checkpoint + resume wrote other files"
grep -q 'uffdlazy: resume: running' resumed.err || fail "resume --stats: $(cat resumed.err)"
step "ok"
