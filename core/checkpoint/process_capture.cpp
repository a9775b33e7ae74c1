#include "core/checkpoint/process_capture.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>

#include "core/base/raw_syscall.h"
#include "core/checkpoint/child_capture.h"
#include "core/checkpoint/proc_file.h"

namespace uffdlazy::ckpt {

namespace {

constexpr size_t kText = 8192;
constinit char g_text[kText];

uint64_t xcr0() {
#if defined(__x86_64__)
  uint32_t a, b, c, d;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
  if (!(c & (1u << 27))) return 0;  // no OSXSAVE
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return uint64_t(hi) << 32 | lo;
#else
  return 0;
#endif
}

// Fields of /proc/self/stat, numbered as proc(5) does (1 = pid).
bool read_mm_fields(snap::MmFields* mm) {
  long n = read_small_file("/proc/self/stat", g_text, kText);
  if (n <= 0) return false;
  const char* end = g_text + n;
  const char* p = end;
  while (p > g_text && p[-1] != ')') p--;  // the name may hold spaces and parentheses
  if (p == g_text) return false;
  uint64_t field[56] = {};
  int index = 2;
  while (p < end && index < 55) {
    while (p < end && *p == ' ') p++;
    index++;
    const char* q = p;
    field[index] = parse_number(&q, end);
    while (q < end && *q != ' ') q++;
    p = q;
  }
  if (index < 51) return false;
  mm->start_code = field[26];
  mm->end_code = field[27];
  mm->start_stack = field[28];
  mm->start_data = field[45];
  mm->end_data = field[46];
  mm->start_brk = field[47];
  mm->arg_start = field[48];
  mm->arg_end = field[49];
  mm->env_start = field[50];
  mm->env_end = field[51];
  mm->brk = uint64_t(sys::call6(SYS_brk, 0));
  return true;
}

// The value after "Key:" in /proc/self/status (already read into g_text), or nullptr.
const char* status_field(const char* key) {
  const size_t k = strlen(key);
  for (const char* p = g_text; *p;) {
    if (!strncmp(p, key, k) && p[k] == ':') {
      p += k + 1;
      while (*p == ' ' || *p == '\t') p++;
      return p;
    }
    while (*p && *p != '\n') p++;
    if (*p) p++;
  }
  return nullptr;
}

}  // namespace

// A message names this many at the most.
constexpr uint32_t kMaxListedChildren = 64;

bool list_child_processes(LineWriter* pids) {
  int32_t kids[kMaxListedChildren];
  bool more = false;
  const uint32_t n = list_child_pids(kids, kMaxListedChildren, &more);
  for (uint32_t i = 0; i < n; i++) {
    if (i) pids->str(" ");
    pids->i64(kids[i]);
  }
  if (more) pids->str(" ...");
  return n > 0;
}

snap::ProcessRecord* capture_process(TableBuilder* table, ObjectTable* objects, LineWriter* why) {
  snap::ProcessRecord* p = table->add_record<snap::ProcessRecord>();
  if (!p) {
    why->str("no room for the process record");
    return nullptr;
  }
  p->old_pid = uint32_t(sys::getpid());
  uint32_t ids[3];
  sys::call6(SYS_getresuid, long(&ids[0]), long(&ids[1]), long(&ids[2]));
  p->uid = ids[0];
  p->euid = ids[1];
  sys::call6(SYS_getresgid, long(&ids[0]), long(&ids[1]), long(&ids[2]));
  p->gid = ids[0];
  p->egid = ids[1];
  const long mask = sys::call6(SYS_umask, 022);
  sys::call6(SYS_umask, mask);
  p->umask = uint32_t(mask);
  p->personality = uint32_t(sys::call6(SYS_personality, 0xffffffff));
  p->flags |= snap::kProcessChildMap;

  if (read_small_file("/proc/self/status", g_text, kText) <= 0) {
    why->str("cannot read /proc/self/status");
    return nullptr;
  }
  const char* shared = status_field("ShdPnd");
  if (shared) p->shared_pending = parse_number(&shared, shared + 16, 16);
  const char* seccomp = status_field("Seccomp");
  if (seccomp && *seccomp != '0') {
    why->str("the process runs under seccomp (its filters cannot be read back)");
    return nullptr;
  }
  const char* features = status_field("x86_Thread_features");
  if (features && !strncmp(features, "shstk", 5)) {
    why->str("the process uses a shadow stack");
    return nullptr;
  }
  if (!capture_children(objects, why)) return nullptr;

  if (!read_mm_fields(&p->mm)) {
    why->str("cannot read /proc/self/stat");
    return nullptr;
  }
  long n = read_small_file("/proc/self/auxv", g_text, kText);
  if (n <= 0 || n % 16 || uint64_t(n) / 8 > snap::kMaxAuxvWords) {
    why->str("cannot read the auxiliary vector");
    return nullptr;
  }
  memcpy(p->auxv, g_text, size_t(n));
  p->auxv_words = uint32_t(n / 8);

  for (uint32_t r = 0; r < snap::kRlimits; r++) {
    rlimit lim = {};
    sys::call6(SYS_prlimit64, 0, r, 0, long(&lim));
    p->rlimits[r] = snap::Rlimit{lim.rlim_cur, lim.rlim_max};
  }
  for (int which = 0; which < 3; which++) {
    itimerval it = {};
    sys::call6(SYS_getitimer, which, long(&it));
    p->itimers[which] = snap::Itimer{it.it_interval.tv_sec, it.it_interval.tv_usec, it.it_value.tv_sec,
                                     it.it_value.tv_usec};
  }
  for (int sig = 1; sig <= int(snap::kSignals); sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    snap::KernelSigaction k = {};
    sys::call6(SYS_rt_sigaction, sig, 0, long(&k), 8);
    p->sigactions[sig - 1] = k;
  }
  p->xcr0 = xcr0();
  timespec now = {};
  sys::clock_gettime(CLOCK_REALTIME, &now);
  p->created_ns = uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec);

  n = read_link("/proc/self/cwd", g_text, kText);
  if (n <= 0) {
    why->str("cannot read the working directory");
    return nullptr;
  }
  if (n > 10 && !strcmp(g_text + n - 10, " (deleted)")) {
    // Made again at resume as an empty directory that is removed once entered.
    n -= 10;
    g_text[n] = 0;
    struct stat st;
    snap::ObjectRecord* o = objects->add(snap::ObjectKind::kDeletedCwd, 0);
    if (!o) {
      why->str("too many objects");
      return nullptr;
    }
    o->flags |= snap::kObjectDeleted;
    o->path = objects->add_string(g_text, size_t(n));
    if (sys::call6(SYS_newfstatat, AT_FDCWD, long("."), long(&st), 0) == 0) {
      o->dev = uint64_t(st.st_dev);
      o->ino = uint64_t(st.st_ino);
      o->file.mode = uint32_t(st.st_mode);
    }
  }
  p->cwd = table->add_string(g_text, size_t(n));
  utsname u = {};
  sys::call6(SYS_uname, long(&u));
  p->kernel_release = table->add_string(u.release, strlen(u.release));
  n = read_link("/proc/self/exe", g_text, kText);
  if (n > 0) p->exe = table->add_string(g_text, size_t(n));
  if (table->overflowed()) {
    why->str("no room for the process record's strings");
    return nullptr;
  }
  return p;
}

}  // namespace uffdlazy::ckpt
