// What a child process checks of its parent's memory, and how it says so: its exit status.
#pragma once

#include <cstdint>

#include "tests/stress/worker.h"

namespace stress {

enum class ChildKind {
  kFull,      // fork-like child with its own memory: check, write (copy-on-write), map memory of its own
  kReadOnly,  // vfork child: shares the parent's memory, may only read it
};

// Exit statuses of a checking child.
inline constexpr int kChildOk = 0;
inline constexpr int kChildMaxBadPages = 100;  // 1..100: that many pages were wrong (capped)
inline constexpr int kChildMmapFailed = 101;
inline constexpr int kChildOwnPagesWrong = 102;

// Runs in the child right after fork/vfork/_Fork/clone: no allocation, no locks, no stdio.
// Checks every readable page of the forking thread's blocks against the shadow it inherited.
int check_in_child(const Worker& w, ChildKind kind);
const char* child_status_text(int status);

// The program started by posix_spawn (`--child-selftest SEED`): a short private workout of its own
// memory under whatever the environment preloads; exit status 0 when every page was right.
int child_selftest(uint64_t seed);

}  // namespace stress
