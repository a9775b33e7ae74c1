#include "core/checkpoint/jump_context.h"

#include <cstddef>

#if defined(__x86_64__)
static_assert(offsetof(uffdlazy::snap::JumpContext, rsp) == 48);
static_assert(offsetof(uffdlazy::snap::JumpContext, rip) == 56);
static_assert(offsetof(uffdlazy::snap::JumpContext, mxcsr) == 64);
static_assert(offsetof(uffdlazy::snap::JumpContext, fpu_cw) == 68);

__asm__(
    ".text\n"
    ".globl uffdlazy_save_context\n"
    ".hidden uffdlazy_save_context\n"
    ".type uffdlazy_save_context,@function\n"
    "uffdlazy_save_context:\n"
    "  movq %rbx, 0(%rdi)\n"
    "  movq %rbp, 8(%rdi)\n"
    "  movq %r12, 16(%rdi)\n"
    "  movq %r13, 24(%rdi)\n"
    "  movq %r14, 32(%rdi)\n"
    "  movq %r15, 40(%rdi)\n"
    "  leaq 8(%rsp), %rax\n"
    "  movq %rax, 48(%rdi)\n"
    "  movq (%rsp), %rax\n"
    "  movq %rax, 56(%rdi)\n"
    "  stmxcsr 64(%rdi)\n"
    "  fnstcw 68(%rdi)\n"
    "  xorl %eax, %eax\n"
    "  ret\n"
    ".size uffdlazy_save_context, .-uffdlazy_save_context\n");
#else
extern "C" int uffdlazy_save_context(uffdlazy::snap::JumpContext*) { return -1; }
#endif
