// A save point a resumed thread continues from: like setjmp, but the registers go into the image's
// thread record (process_format.h JumpContext) and the restorer "returns" to it.
//
// save_context() returns 0 when called and 1 when a thread of a resumed process arrives there.
// Only the callee-saved registers, the stack pointer, the return address and the callee-saved
// FPU control words are kept: everything else the compiler already assumes clobbered by the call.
// The caller's stack frame must stay untouched until the image has been taken (it is part of it).
#pragma once

#include "core/snapshot/process_format.h"

extern "C" int uffdlazy_save_context(uffdlazy::snap::JumpContext* ctx) __attribute__((returns_twice));

namespace uffdlazy::ckpt {

// Whether checkpoints are possible on this architecture.
constexpr bool kCanSaveContext =
#if defined(__x86_64__)
    true;
#else
    false;
#endif

}  // namespace uffdlazy::ckpt
