// The pids of a resumed process's children as the program knows them. A child made again at
// resume (a zombie, so far) has a new pid; the program still holds the old one (fork's return
// value). The shim's wait and kill interposers translate: the program passes and gets back the
// pid it knows. A slot is freed once its child is waited for, so a later child that happens to
// get an old number is not confused with it for long. Lock-free, no allocation.
#pragma once

#include <cstdint>

namespace uffdlazy::ckpt {

// Whether any child is translated (the interposers' fast path).
bool child_pids_in_use();
// The pid to pass to the kernel for the pid the program passed (unchanged when not a known child).
int32_t real_child_pid(int32_t pid);
// The pid to give the program for the one the kernel returned (unchanged when not a known child).
int32_t known_child_pid(int32_t pid);
// The child the program knows as `old_pid` was waited for: its slot is freed.
void child_pid_reaped(int32_t old_pid);

}  // namespace uffdlazy::ckpt
