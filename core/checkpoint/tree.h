// A checkpoint of a process tree: the root (the process the checkpoint was armed in) and its
// *members* (every process forked from it under the shim, at any depth) share one page, mapped
// shared before the first fork and left out of every image. The root's checkpoint asks every
// member through it; each member stops its own threads and monitor and says so; only once every
// member has stopped does any process record itself (one instant); each then writes its own image
// (IMG.PID beside the root's IMG) and says whether it could. See docs/checkpoint-resume.md,
// "Process trees".
#pragma once

#include <cstdint>

namespace uffdlazy::ckpt {

inline constexpr uint32_t kMaxMembers = 64;

struct TreePage {
  uint32_t epoch;    // futex word (shared): bumped by the root to ask every member to stop
  uint32_t stopped;  // futex word: members stopped for this epoch
  uint32_t go;       // futex word: 1 record and write, 2 abandon (let the threads go)
  uint32_t done;     // futex word: members that finished writing (or failed)
  uint32_t failed;   // members that could not write their image
  uint32_t count;    // member slots used
  int32_t members[kMaxMembers];  // pids (0: a slot not used)
};

// In the root, when the checkpoint is armed (before any fork). False if it cannot be mapped.
bool prepare_tree();
// The page, or nullptr (not armed, or in a resumed process: the page is not part of images).
TreePage* tree_page();
// The page's address range (left out of images).
void tree_range(uint64_t* start, uint64_t* end);
// Forgets the page (a resumed process has none).
void forget_tree();
// Slot values besides a pid: a fork under way (reserved before it, the child not yet registered).
inline constexpr int32_t kSlotForking = -1;
inline constexpr int32_t kSlotForked = -2;  // fork returned in the parent; the child registers
// Before a fork (its prepare handler) in the root or a member: reserves the child's slot, so that
// a checkpoint never finds a child of the tree it does not know of (it waits for the slot).
void reserve_member_slot();
// After the fork, in the parent.
void member_slot_forked();
// In a forked child of a tree: registers the calling process in the slot reserved for it and
// starts its member thread, which calls `checkpoint` whenever the root asks. False (the child is
// then no member) when the tree is full or the thread cannot start.
bool become_member(void (*checkpoint)());
// The root, every thread of its own stopped: waits (up to timeout_ns) until no slot is a fork
// under way; a slot still unresolved then (a fork that failed, or a thread stopped before its
// clone) is given up.
void settle_member_slots(uint64_t timeout_ns);
// Whether this process is a member (not the root).
bool is_member();
// Whether `pid` is a registered member.
bool is_tree_member(int32_t pid);

// Futex operations on the shared page (not private: the members are other processes).
void tree_wake(uint32_t* word);
// Waits while *word == value, up to timeout_ns (0: for ever); false on timeout.
bool tree_wait(uint32_t* word, uint32_t value, uint64_t timeout_ns);

}  // namespace uffdlazy::ckpt
