#include "core/checkpoint/thread_record.h"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <sys/prctl.h>

#include "core/base/raw_syscall.h"
#include "core/checkpoint/process_settings.h"
#include "core/checkpoint/settings_syscalls.h"

#if defined(__x86_64__)
#include <asm/prctl.h>
#endif

// glibc >= 2.35: where each thread's rseq area lies relative to its thread pointer, and the size
// glibc registered it with (0 when glibc registers none).
extern "C" const ptrdiff_t __rseq_offset __attribute__((weak));
extern "C" const unsigned int __rseq_size __attribute__((weak));

namespace uffdlazy::ckpt {

namespace {

constexpr uint32_t kRseqSignature = 0x53053053;  // glibc's RSEQ_SIG on x86_64
constexpr int kRseqUnregister = 1;

// The kernel answers a registration with the thread's own (area, length, signature) with EBUSY:
// that finds the length glibc used without knowing its version. Any other answer means no such
// registration (and one we made by accident is undone).
uint32_t registered_rseq_length(uint64_t area) {
  const uint32_t candidates[] = {&__rseq_size ? __rseq_size : 0u, 32u, 20u};
  for (uint32_t len : candidates) {
    if (len < 20) continue;
    long r = sys::call6(SYS_rseq, long(area), len, 0, kRseqSignature);
    if (r == -EBUSY) return len;
    if (r == 0) {
      sys::call6(SYS_rseq, long(area), len, kRseqUnregister, kRseqSignature);
      return 0;
    }
  }
  return 0;
}

// Whether the thread has some rseq registration: a well-formed area of our own is accepted only
// when it has none (and is given up again at once).
bool has_rseq_registration() {
  alignas(32) uint8_t probe[32] = {};
  const long r = sys::call6(SYS_rseq, long(probe), sizeof probe, 0, kRseqSignature);
  if (r == 0) {
    sys::call6(SYS_rseq, long(probe), sizeof probe, kRseqUnregister, kRseqSignature);
    return false;
  }
  return r == -EINVAL || r == -EPERM || r == -EBUSY;
}

}  // namespace

void record_this_thread(snap::ThreadRecord* out, snap::ThreadRole role) {
  out->old_tid = uint32_t(sys::gettid());
  out->role = uint32_t(role);
#if defined(__x86_64__)
  unsigned long base = 0;
  sys::call6(SYS_arch_prctl, ARCH_GET_FS, long(&base));
  out->fs_base = base;
  base = 0;
  sys::call6(SYS_arch_prctl, ARCH_GET_GS, long(&base));
  out->gs_base = base;
#endif
  void* tid_address = nullptr;
  sys::call6(SYS_prctl, PR_GET_TID_ADDRESS, long(&tid_address));
  out->tid_address = uint64_t(tid_address);
  void* head = nullptr;
  size_t len = 0;
  if (sys::call6(SYS_get_robust_list, 0, long(&head), long(&len)) == 0) {
    out->robust_head = uint64_t(head);
    out->robust_length = len;
  }
  settings::read_thread_settings(&out->settings);
  out->rseq_area = 0;
  if (&__rseq_offset && out->fs_base) {
    const uint64_t area = out->fs_base + uint64_t(__rseq_offset);
    const uint32_t rlen = registered_rseq_length(area);
    if (rlen) {
      out->rseq_area = area;
      out->rseq_length = rlen;
      out->rseq_signature = kRseqSignature;
    }
  }
  // glibc registers none (glibc.pthread.rseq=0, or an older glibc): an area the program registered
  // itself through syscall(2) is known by its thread id; the kernel confirms it.
  uint64_t area;
  uint32_t length, signature;
  if (!out->rseq_area && program_rseq_of_this_thread(&area, &length, &signature) &&
      sys::call6(SYS_rseq, long(area), length, 0, signature) == -EBUSY) {
    out->rseq_area = area;
    out->rseq_length = length;
    out->rseq_signature = signature;
  }
  if (!out->rseq_area && has_rseq_registration()) out->settings.flags |= snap::kThreadRseqUnknown;
  memset(out->comm, 0, sizeof out->comm);
  sys::call6(SYS_prctl, PR_GET_NAME, long(out->comm));
}

}  // namespace uffdlazy::ckpt
