#include "core/checkpoint/tree.h"

#include <linux/futex.h>
#include <sys/mman.h>

#include "core/base/aside_mmap.h"
#include "core/base/hidden_thread.h"
#include "core/base/mono_clock.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy::ckpt {

namespace {

constinit TreePage* g_page = nullptr;
constinit bool g_member = false;
constinit HiddenThread g_thread;
using CheckpointFn = void (*)();
constinit CheckpointFn g_checkpoint = nullptr;
constinit int32_t g_reserved = -1;  // the slot reserved by the fork under way (process-local)
// The epoch when that fork began: a checkpoint asked after it (even before the member thread
// runs) is one the new member must answer.
constinit uint32_t g_fork_epoch = 0;

void* member_thread(void*) {
  name_this_thread("uffdlazy-member");
  uint32_t seen = g_fork_epoch;
  for (;;) {
    TreePage* page = g_page;
    if (!page) {
      // A resumed member: the tree is gone; nothing will ask again.
      uint32_t never = 0;
      sys::futex(&never, FUTEX_WAIT_PRIVATE, 0);
      continue;
    }
    const uint32_t now = __atomic_load_n(&page->epoch, __ATOMIC_ACQUIRE);
    if (now == seen) {
      sys::futex(&page->epoch, FUTEX_WAIT, int(now));
      continue;
    }
    seen = now;
    g_checkpoint();
  }
  return nullptr;
}

}  // namespace

bool prepare_tree() {
  if (g_page) return true;
  const long m = mmap_aside(4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sys::failed(m)) return false;
  g_page = reinterpret_cast<TreePage*>(m);
  return true;
}

TreePage* tree_page() { return g_page; }

void tree_range(uint64_t* start, uint64_t* end) {
  *start = reinterpret_cast<uint64_t>(g_page);
  *end = g_page ? *start + 4096 : *start;
}

void forget_tree() { g_page = nullptr; }

void reserve_member_slot() {
  g_reserved = -1;
  if (!g_page) return;
  const uint32_t slot = __atomic_fetch_add(&g_page->count, 1, __ATOMIC_ACQ_REL);
  if (slot >= kMaxMembers) return;
  g_fork_epoch = __atomic_load_n(&g_page->epoch, __ATOMIC_ACQUIRE);
  __atomic_store_n(&g_page->members[slot], kSlotForking, __ATOMIC_RELEASE);
  g_reserved = int32_t(slot);
}

void member_slot_forked() {
  if (!g_page || g_reserved < 0) return;
  int32_t expected = kSlotForking;
  __atomic_compare_exchange_n(&g_page->members[g_reserved], &expected, kSlotForked, false, __ATOMIC_ACQ_REL,
                              __ATOMIC_ACQUIRE);
  g_reserved = -1;
}

void settle_member_slots(uint64_t timeout_ns) {
  if (!g_page) return;
  const uint64_t end = mono_now_ns() + timeout_ns;
  const uint32_t n = __atomic_load_n(&g_page->count, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < n && i < kMaxMembers; i++) {
    for (;;) {
      const int32_t v = __atomic_load_n(&g_page->members[i], __ATOMIC_ACQUIRE);
      if (v != kSlotForking && v != kSlotForked) break;
      if (mono_now_ns() >= end) {
        int32_t expected = v;
        __atomic_compare_exchange_n(&g_page->members[i], &expected, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        break;
      }
      timespec nap = {0, 1000000};  // a child between its clone and its first handler
      sys::call6(SYS_nanosleep, long(&nap), 0);
    }
  }
}

bool become_member(void (*checkpoint)()) {
  if (!g_page) return false;
  g_thread.forget();
  const int32_t slot = g_reserved;
  g_reserved = -1;
  if (slot < 0) return false;
  __atomic_store_n(&g_page->members[slot], int32_t(sys::getpid()), __ATOMIC_RELEASE);
  g_member = true;
  g_checkpoint = checkpoint;
  return g_thread.start(member_thread, nullptr, 256 * 1024);
}

bool is_member() { return g_member; }

bool is_tree_member(int32_t pid) {
  if (!g_page || pid <= 0) return false;
  const uint32_t n = __atomic_load_n(&g_page->count, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < n && i < kMaxMembers; i++) {
    if (__atomic_load_n(&g_page->members[i], __ATOMIC_ACQUIRE) == pid) return true;
  }
  return false;
}

void tree_wake(uint32_t* word) { sys::futex(word, FUTEX_WAKE, 1 << 30); }

bool tree_wait(uint32_t* word, uint32_t value, uint64_t timeout_ns) {
  const uint64_t end = timeout_ns ? mono_now_ns() + timeout_ns : 0;
  while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == value) {
    if (!end) {
      sys::futex(word, FUTEX_WAIT, int(value));
      continue;
    }
    const uint64_t now = mono_now_ns();
    if (now >= end) return false;
    timespec left = {long((end - now) / 1000000000ull), long((end - now) % 1000000000ull)};
    sys::call6(SYS_futex, long(word), FUTEX_WAIT, long(value), long(&left), 0, 0);
  }
  return true;
}

}  // namespace uffdlazy::ckpt
