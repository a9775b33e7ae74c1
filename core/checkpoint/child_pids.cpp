#include "core/checkpoint/child_pids.h"

#include "core/checkpoint/resume_block.h"

namespace uffdlazy::ckpt {

namespace {

uint32_t used() {
  const uint32_t n = __atomic_load_n(&resume_block().child_count, __ATOMIC_ACQUIRE);
  return n < kMaxChildPids ? n : kMaxChildPids;
}

}  // namespace

bool child_pids_in_use() { return used() != 0; }

int32_t real_child_pid(int32_t pid) {
  if (pid <= 0) return pid;
  ChildPid* c = resume_block().children;
  for (uint32_t i = 0, n = used(); i < n; i++) {
    if (__atomic_load_n(&c[i].old_pid, __ATOMIC_ACQUIRE) == pid) return c[i].new_pid;
  }
  return pid;
}

int32_t known_child_pid(int32_t pid) {
  if (pid <= 0) return pid;
  ChildPid* c = resume_block().children;
  for (uint32_t i = 0, n = used(); i < n; i++) {
    const int32_t old = __atomic_load_n(&c[i].old_pid, __ATOMIC_ACQUIRE);
    if (old && c[i].new_pid == pid) return old;
  }
  return pid;
}

void child_pid_reaped(int32_t old_pid) {
  if (old_pid <= 0) return;
  ChildPid* c = resume_block().children;
  for (uint32_t i = 0, n = used(); i < n; i++) {
    int32_t expected = old_pid;
    __atomic_compare_exchange_n(&c[i].old_pid, &expected, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
  }
}

}  // namespace uffdlazy::ckpt
