#include "core/pager/run_state.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

constexpr size_t kPage = 4096;
constexpr char kVar[] = "UFFDLAZY_RUN=";
// The environment string added by the process that creates the page (putenv keeps the pointer).
constinit char g_env_entry[32] = {};

RunShared* map_page(int fd) {
  struct stat st;
  if (sys::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != long(kPage)) return nullptr;
  long m = mmap_aside(kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (sys::failed(m)) return nullptr;
  RunShared* s = reinterpret_cast<RunShared*>(m);
  if (__atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) != RunShared::kMagic) {
    // The number names some other file now (the program closed ours and reused it).
    sys::munmap(s, kPage);
    return nullptr;
  }
  return s;
}

}  // namespace

int RunState::create_page(RunShared** mapped) {
  long fd = sys::call6(SYS_memfd_create, reinterpret_cast<long>("uffdlazy-run"), 0);
  if (fd < 0) return int(fd);
  long r = sys::ftruncate(int(fd), kPage);
  long m = r == 0 ? mmap_aside(kPage, PROT_READ | PROT_WRITE, MAP_SHARED, int(fd), 0) : r;
  if (sys::failed(m)) {
    sys::close(int(fd));
    return int(m);
  }
  RunShared* s = reinterpret_cast<RunShared*>(m);
  s->snapshot_bytes = -1;
  s->report_faults = -1;
  s->trace_faults = -1;
  __atomic_store_n(&s->magic, RunShared::kMagic, __ATOMIC_RELEASE);
  *mapped = s;
  return int(fd);
}

bool RunState::attach(char** envp, bool create) {
  pid_ = uint32_t(sys::getpid());
  for (char** e = envp; e && *e; e++) {
    if (strncmp(*e, kVar, sizeof kVar - 1)) continue;
    long fd = 0;
    const char* p = *e + sizeof kVar - 1;
    for (; *p >= '0' && *p <= '9' && fd < 1 << 20; p++) fd = fd * 10 + (*p - '0');
    shared_ = *p == 0 ? map_page(int(fd)) : nullptr;
    break;
  }
  if (!shared_ && create) {
    int fd = create_page(&shared_);
    if (fd < 0) return false;
    // The page travels to the programs this one runs by its descriptor number. putenv keeps the
    // string, which lives here for good.
    char* w = g_env_entry;
    memcpy(w, kVar, sizeof kVar - 1);
    w += sizeof kVar - 1;
    char digits[12];
    int n = 0;
    for (unsigned v = unsigned(fd); n == 0 || v; v /= 10) digits[n++] = char('0' + v % 10);
    while (n) *w++ = digits[--n];
    *w = 0;
    putenv(g_env_entry);
  }
  if (!shared_) return false;
  uint32_t none = 0;
  __atomic_compare_exchange_n(&shared_->first_pid, &none, pid_, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
  return true;
}

bool RunState::first() const { return shared_ && __atomic_load_n(&shared_->first_pid, __ATOMIC_ACQUIRE) == pid_; }

void RunState::lock() {
  // A futex shared between processes (no FUTEX_PRIVATE_FLAG).
  uint32_t expected = 0;
  if (__atomic_compare_exchange_n(&shared_->lock, &expected, 1u, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
  while (__atomic_exchange_n(&shared_->lock, 2u, __ATOMIC_ACQUIRE) != 0) {
    sys::futex(&shared_->lock, FUTEX_WAIT, 2);
  }
}

void RunState::unlock() {
  if (__atomic_exchange_n(&shared_->lock, 0u, __ATOMIC_RELEASE) == 2) sys::futex(&shared_->lock, FUTEX_WAKE, 1);
}

}  // namespace uffdlazy
