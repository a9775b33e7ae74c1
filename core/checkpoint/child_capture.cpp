#include "core/checkpoint/child_capture.h"

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/wait.h>

#include "core/base/decimal.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/child_pids.h"
#include "core/checkpoint/proc_file.h"
#include "core/checkpoint/resume_protocol.h"
#include "core/checkpoint/tree.h"

namespace uffdlazy::ckpt {

namespace {

constexpr uint32_t kMaxChildren = kMaxChildPids;
constexpr int kPidWait = 1;  // P_PID

struct Child {
  int32_t pid;
  char state;
  int64_t pgrp;
  int64_t exit_signal;
};


// /proc/PID/stat: the state (field 3), the process group (5) and the exit signal (38).
bool read_child(int32_t pid, Child* c) {
  char path[64] = "/proc/";
  size_t len = 6;
  len += format_u64(path + len, uint64_t(pid));
  memcpy(path + len, "/stat", 6);
  static char text[2048];
  const long n = read_small_file(path, text, sizeof text);
  if (n <= 0) return false;
  const char* end = text + n;
  const char* p = end;
  while (p > text && p[-1] != ')') p--;
  if (p == text) return false;
  c->pid = pid;
  int index = 2;
  while (p < end && index < 38) {
    while (p < end && *p == ' ') p++;
    index++;
    const char* q = p;
    if (index == 3) {
      c->state = *q;
    } else {
      const bool negative = *q == '-';
      if (negative) q++;
      const int64_t v = int64_t(parse_number(&q, end));
      if (index == 5) c->pgrp = negative ? -v : v;
      if (index == 38) c->exit_signal = negative ? -v : v;
    }
    while (q < end && *q != ' ') q++;
    p = q;
  }
  return index == 38;
}

}  // namespace

bool capture_children(ObjectTable* objects, LineWriter* why) {
  int32_t pids[kMaxChildren];
  bool overflow = false;
  const uint32_t n = list_child_pids(pids, kMaxChildren, &overflow);
  if (overflow) {
    why->str("the process has more than ").u64(kMaxChildren).str(" child processes");
    return false;
  }
  Child kids[kMaxChildren];
  LineWriter live;
  for (uint32_t i = 0; i < n; i++) {
    if (!read_child(pids[i], &kids[i])) kids[i] = Child{pids[i], '?', 0, 0};
    if (kids[i].state != 'Z' && !is_tree_member(pids[i])) {
      if (live.size()) live.str(" ");
      live.i64(known_child_pid(pids[i]));
    }
  }
  if (live.size()) {
    why->str("the process has child processes the checkpoint cannot take (").str(live.data(), live.size())
        .str("): only children forked under the shim are checkpointed with it, not those made by posix_spawn, vfork "
             "or clone");
    return false;
  }
  const long own_group = sys::call6(SYS_getpgid, 0);
  for (uint32_t i = 0; i < n; i++) {
    const Child& c = kids[i];
    const int32_t known = known_child_pid(c.pid);
    if (c.state != 'Z') {
      // A member of the tree, stopped with this process: it writes its own image.
      snap::ObjectRecord* o = objects->add(snap::ObjectKind::kChild, 0);
      if (!o) {
        why->str("too many objects");
        return false;
      }
      o->zombie.pid = c.pid;
      continue;
    }
    if (c.exit_signal != SIGCHLD) {
      why->str("child process ").i64(known).str(" has exited and reports its end with signal ").i64(c.exit_signal)
          .str(", not SIGCHLD (clone): it cannot be made again");
      return false;
    }
    if (c.pgrp != own_group) {
      why->str("child process ").i64(known).str(" has exited in a process group of its own (")
          .i64(c.pgrp).str("); only zombies in the process's own group are made again");
      return false;
    }
    siginfo_t si = {};
    const long r = sys::call6(SYS_waitid, kPidWait, c.pid, long(&si), WEXITED | WNOWAIT | __WALL, 0);
    if (r < 0 || si.si_pid != c.pid) {
      why->str("cannot read how child process ").i64(known).str(" ended: ").errno_text(r < 0 ? int(-r) : 0);
      return false;
    }
    if (si.si_code == CLD_DUMPED) {
      why->str("child process ").i64(known).str(" was killed with a core dump, which a resume cannot make again");
      return false;
    }
    if (si.si_code != CLD_EXITED && si.si_code != CLD_KILLED) {
      why->str("child process ").i64(known).str(" ended in a way a resume cannot make again (code ")
          .i64(si.si_code).str(")");
      return false;
    }
    snap::ObjectRecord* o = objects->add(snap::ObjectKind::kZombieChild, 0);
    if (!o) {
      why->str("too many objects");
      return false;
    }
    o->zombie.pid = known;
    o->zombie.code = si.si_code;
    o->zombie.status = si.si_status;
  }
  return true;
}

}  // namespace uffdlazy::ckpt
