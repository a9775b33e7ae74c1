#include "tests/stress/signal_handlers.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "tests/stress/page_pattern.h"

namespace stress {

namespace {

thread_local Worker* t_self = nullptr;
thread_local void* t_alt_stack = nullptr;
constexpr size_t kAltStack = 64 * 1024;
constexpr size_t kHandlerMapPages = 16;

int check_arena(Worker& w, const char* when) {
  HandlerState& h = w.handler;
  int bad = 0;
  for (size_t k = 0; k < kArenaPages; k++) {
    PageLook look = check_page(h.arena + k * kPage, kPage, h.tags[k], false);
    if (look.ok) continue;
    bad++;
    g_problems.wrong_pages.fetch_add(1);
    report("wrong page: thread %d %s: signal arena page %zu (%p): expected %#llx, found word0=%#llx, first wrong word %zu",
           w.id, when, k, static_cast<void*>(h.arena + k * kPage), (unsigned long long)h.tags[k],
           (unsigned long long)look.word0, look.bad_word);
    madvise(h.arena + k * kPage, kPage, MADV_DONTNEED);
    h.tags[k] = 0;
  }
  return bad;
}

void on_usr1(int) {
  int saved = errno;
  Worker* w = t_self;
  if (w && w->handler.arena) {
    HandlerState& h = w->handler;
    h.handled++;
    size_t k = h.handled % kArenaPages;
    char* page = h.arena + k * kPage;
    if (h.handled % 5 == 0) {
      madvise(page, kPage, MADV_DONTNEED);
      h.tags[k] = 0;
    } else {
      h.tags[k] = make_tag(uint32_t(w->id), kHandlerTagBit | h.handled);
      fill_page(page, kPage, h.tags[k]);
    }
    check_arena(*w, "in its SIGUSR1 handler");
    if (h.handled % 3 == 0) {
      // A mapping made, used and dropped entirely inside the handler.
      void* m = mmap(nullptr, kHandlerMapPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) {
        g_problems.failed_calls.fetch_add(1);
        report("failed call: thread %d: mmap in its SIGUSR1 handler", w->id);
      } else {
        char* p = static_cast<char*>(m);
        uint64_t tag = make_tag(uint32_t(w->id), kHandlerTagBit | (uint64_t(1) << 38) | h.handled);
        for (size_t i = 0; i < kHandlerMapPages; i += 4) fill_page(p + i * kPage, kPage, tag + i);
        for (size_t i = 0; i < kHandlerMapPages; i++) {
          if (check_page(p + i * kPage, kPage, i % 4 == 0 ? tag + i : 0, false).ok) continue;
          g_problems.wrong_pages.fetch_add(1);
          report("wrong page: thread %d: page %zu of a mapping made in its SIGUSR1 handler", w->id, i);
        }
        munmap(m, kHandlerMapPages * kPage);
        h.mmaps++;
      }
    }
  }
  errno = saved;
}

void on_crash(int sig, siginfo_t* info, void*) {
  Worker* w = t_self;
  if (w) {
    report("CRASH: signal %d at address %p in thread %d (tid %d) step %d op %s while %s (at %#lx)", sig, info->si_addr,
           w->id, w->tid.load(), w->step.load(), w->op.load() >= 0 ? op_info(Op(w->op.load())).name : "-",
           w->doing.load(), (unsigned long)w->addr.load());
  } else {
    report("CRASH: signal %d at address %p in tid %d, not a stress thread", sig, info->si_addr, int(gettid()));
  }
  // SA_RESETHAND: returning re-raises the fault with the default action, and the process dies of it.
}

}  // namespace

void install_signal_handlers() {
  struct sigaction sa = {};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  struct sigaction crash = {};
  crash.sa_sigaction = on_crash;
  crash.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&crash.sa_mask);
  sigaction(SIGSEGV, &crash, nullptr);
  sigaction(SIGBUS, &crash, nullptr);
}

bool prepare_thread_for_signals(Worker& w) {
  t_self = &w;
  stack_t ss = {};
  ss.ss_sp = t_alt_stack = std::malloc(kAltStack);
  ss.ss_size = kAltStack;
  if (ss.ss_sp) sigaltstack(&ss, nullptr);
  void* m = mmap(nullptr, kArenaPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return false;
  w.handler.arena = static_cast<char*>(m);
  return true;
}

void finish_thread_signals(Worker& w) {
  if (w.handler.arena) {
    check_arena(w, "at the end");
    munmap(w.handler.arena, kArenaPages * kPage);
    w.handler.arena = nullptr;
  }
  if (t_alt_stack) {
    stack_t off = {};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
    std::free(t_alt_stack);
    t_alt_stack = nullptr;
  }
}

}  // namespace stress
