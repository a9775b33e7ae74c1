// What the restorer has instead of a C runtime: the entry point (onto a stack in .bss), the jump
// into a resumed thread, thread creation, the memory functions the compiler may call, and output.
#include <ctime>

#include "core/base/errno_names.h"
#include "tools/restorer/restorer.h"

extern "C" {

// The compiler may emit calls to these; built with -fno-builtin so they do not call themselves.
void* memcpy(void* dst, const void* src, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  if (((uintptr_t(d) | uintptr_t(s) | n) & 7) == 0) {
    auto* d8 = reinterpret_cast<uint64_t*>(d);
    const auto* s8 = reinterpret_cast<const uint64_t*>(s);
    for (size_t i = 0; i < n / 8; i++) d8[i] = s8[i];
    return dst;
  }
  for (size_t i = 0; i < n; i++) d[i] = s[i];
  return dst;
}

void* memmove(void* dst, const void* src, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  if (d < s) {
    for (size_t i = 0; i < n; i++) d[i] = s[i];
  } else {
    for (size_t i = n; i > 0; i--) d[i - 1] = s[i - 1];
  }
  return dst;
}

void* memset(void* dst, int c, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  for (size_t i = 0; i < n; i++) d[i] = static_cast<unsigned char>(c);
  return dst;
}

int memcmp(const void* a, const void* b, size_t n) {
  const auto* x = static_cast<const unsigned char*>(a);
  const auto* y = static_cast<const unsigned char*>(b);
  for (size_t i = 0; i < n; i++) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

void restorer_main(long* initial_sp);

// The kernel's stack holds argc, argv and the environment; the restorer copies what it needs and
// moves to a stack of its own at once (the kernel's is unmapped later).
alignas(16) unsigned char restorer_stack[256 * 1024];

__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  movq %rsp, %rdi\n"
    "  leaq restorer_stack+262144(%rip), %rsp\n"
    "  xorl %ebp, %ebp\n"
    "  callq restorer_main\n"
    "  ud2\n"

    // restorer_jump(ctx): the thread continues at its save point, which returns 1.
    ".globl restorer_jump\n"
    "restorer_jump:\n"
    "  ldmxcsr 64(%rdi)\n"
    "  fldcw 68(%rdi)\n"
    "  movq 0(%rdi), %rbx\n"
    "  movq 8(%rdi), %rbp\n"
    "  movq 16(%rdi), %r12\n"
    "  movq 24(%rdi), %r13\n"
    "  movq 32(%rdi), %r14\n"
    "  movq 40(%rdi), %r15\n"
    "  movq 48(%rdi), %rsp\n"
    "  movq 56(%rdi), %rcx\n"
    "  movl $1, %eax\n"
    "  jmpq *%rcx\n"

    // restorer_spawn(flags, stack_top, fn, arg): clone(2); the child calls fn(arg) on its stack.
    ".globl restorer_spawn\n"
    "restorer_spawn:\n"
    "  subq $16, %rsi\n"
    "  movq %rdx, 0(%rsi)\n"
    "  movq %rcx, 8(%rsi)\n"
    "  movl $56, %eax\n"
    "  xorl %edx, %edx\n"
    "  xorl %r10d, %r10d\n"
    "  xorl %r8d, %r8d\n"
    "  syscall\n"
    "  testq %rax, %rax\n"
    "  jnz 1f\n"
    "  xorl %ebp, %ebp\n"
    "  popq %rax\n"
    "  popq %rdi\n"
    "  andq $-16, %rsp\n"
    "  callq *%rax\n"
    "  movl $60, %eax\n"
    "  xorl %edi, %edi\n"
    "  syscall\n"
    "1:\n"
    "  ret\n");
}

namespace restorer {

Line& Line::s(const char* text) { return s(text, length(text)); }

Line& Line::s(const char* text, size_t n) {
  for (size_t i = 0; i < n && n_ < sizeof buf_ - 1; i++) buf_[n_++] = text[i];
  return *this;
}

Line& Line::u(uint64_t v) {
  char tmp[20];
  size_t k = 0;
  do {
    tmp[k++] = char('0' + v % 10);
    v /= 10;
  } while (v);
  while (k) s(&tmp[--k], 1);
  return *this;
}

Line& Line::x(uint64_t v) {
  s("0x");
  bool started = false;
  for (int shift = 60; shift >= 0; shift -= 4) {
    const unsigned d = unsigned(v >> shift) & 15;
    if (!d && !started && shift) continue;
    started = true;
    const char c = char(d < 10 ? '0' + d : 'a' + d - 10);
    s(&c, 1);
  }
  return *this;
}

Line& Line::i(int64_t v) {
  if (v < 0) s("-");
  return u(v < 0 ? uint64_t(-v) : uint64_t(v));
}

Line& Line::err(long negative_errno) {
  const int e = int(-negative_errno);
  const char* name = uffdlazy::errno_name(e);
  if (name[1] == '?') return s("errno ").u(uint64_t(e));
  return s(uffdlazy::errno_message(e)).s(" (").s(name).s(")");
}

void Line::emit() {
  buf_[n_++] = '\n';
  sys::write(2, buf_, n_);
  n_ = 0;
}

Line& resume_line(Line& l) { return l.s("uffdlazy: resume ").s(g_options.image).s(": "); }

void die(int status, Line& line) {
  line.emit();
  refuse_resume_barrier();
  for (;;) sys::exit_group(status);
}

uint64_t now_ns() {
  timespec ts = {};
  sys::clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

size_t length(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

bool same(const char* a, const char* b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

void trace(const char* step) {
  if (!g_options.trace) return;
  Line l;
  l.s("uffdlazy-restorer: ").u((now_ns() - g_options.launch_ns) / 1000).s(" us: ").s(step);
  l.emit();
}

}  // namespace restorer
