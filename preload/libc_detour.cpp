#include "preload/libc_detour.h"

#include <cerrno>
#include <cstring>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "core/base/align.h"
#include "core/base/proc_maps.h"
#include "core/base/raw_syscall.h"
#include "core/pager/lazy_pager.h"
#include "preload/code_check.h"
#include "preload/loaded_objects.h"
#include "preload/syscall_hooks.h"

namespace uffdlazy::detour {

namespace {

#if defined(__x86_64__)
constexpr const char kGlibcVersion[] = "GLIBC_2.2.5";
#elif defined(__aarch64__)
constexpr const char kGlibcVersion[] = "GLIBC_2.17";
#endif

struct Target {
  const char* name;
  long nr;
  void* hook;
  unsigned char* body = nullptr;
  size_t size = 0;
  unsigned char saved[16] = {};
};

uint64_t page_size() { return getauxval(AT_PAGESZ); }

// The process has one thread: patching code another thread may be running is not safe.
struct ThreadCount {
  long threads = -1;
};
void count_threads(const char* line, size_t n, void* ctx) {
  if (n > 8 && !memcmp(line, "Threads:", 8)) {
    long v = 0;
    for (size_t i = 8; i < n; i++) {
      if (line[i] >= '0' && line[i] <= '9') v = v * 10 + (line[i] - '0');
    }
    static_cast<ThreadCount*>(ctx)->threads = v;
  }
}

bool single_threaded() {
  char buf[2048];
  ThreadCount c;
  if (for_each_line("/proc/self/status", buf, sizeof buf, count_threads, &c) < 0) return false;
  return c.threads == 1;
}

// Writes code over [at, at + n): through a writable mapping of the page if the kernel allows
// one, else through /proc/self/mem (which writes read-only text). Always leaves the page r-x.
bool write_code(uintptr_t at, const unsigned char* bytes, size_t n) {
  const uintptr_t first = align_down(at, page_size()), last = align_up(at + n, page_size());
  bool done = false;
  if (sys::call6(SYS_mprotect, long(first), long(last - first), PROT_READ | PROT_WRITE | PROT_EXEC) == 0) {
    memcpy(reinterpret_cast<void*>(at), bytes, n);
    done = true;
    sys::call6(SYS_mprotect, long(first), long(last - first), PROT_READ | PROT_EXEC);
  } else {
    const long fd = sys::openat(AT_FDCWD, "/proc/self/mem", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      done = sys::pwrite(int(fd), bytes, n, long(at)) == long(n);
      sys::close(int(fd));
    }
  }
  if (done) {
    __builtin___clear_cache(reinterpret_cast<char*>(at), reinterpret_cast<char*>(at + n));
    pager::note_own_memory({first, last});
  }
  return done;
}

bool find_body(void* libc, Target* t, LineWriter* why) {
  void* f = dlvsym(libc, t->name, kGlibcVersion);
  Dl_info info;
  ElfW(Sym)* sym = nullptr;
  if (!f || !dladdr1(f, &info, reinterpret_cast<void**>(&sym), RTLD_DL_SYMENT) || !sym) {
    why->str("libc has no ").str(t->name).str("@").str(kGlibcVersion);
    return false;
  }
  t->body = static_cast<unsigned char*>(f);
  t->size = sym->st_size;
  return true;
}

bool verify(Target* t, const char* test_alter, LineWriter* why) {
  const unsigned char* bytes = t->body;
  unsigned char copy[512];
  const bool altered = !strcmp(test_alter, t->name) && t->size <= sizeof copy;
  if (altered) {
    memcpy(copy, t->body, t->size);
    alter_for_test(kHostArch, copy, t->size);
    bytes = copy;
  }
  const char* problem = check_syscall_wrapper(kHostArch, bytes, t->size, t->nr);
  if (!problem) return true;
  why->str("libc's ").str(t->name).str(" (").u64(t->size).str(" bytes) ").str(problem);
  if (altered) why->str(" (altered by UFFDLAZY_TEST_ALTER_LIBC)");
  return false;
}

void install_loader_hook(Outcome* out) {
  auto* at = static_cast<unsigned char*>(loader_debug_state());
  if (!at) {
    out->why_not_loader.str("ld.so's r_debug was not found");
    return;
  }
  const uintptr_t hook = reinterpret_cast<uintptr_t>(&hooks::uffdlazy_loader_changed);
  unsigned char jump[16];
  size_t n = encode_near_jump(kHostArch, uintptr_t(at), hook, jump);
  if (!n) {
    n = jump_size(kHostArch);
    encode_jump(kHostArch, hook, jump);
  }
  if (const char* problem = check_bare_return(kHostArch, at, n)) {
    out->why_not_loader.str("ld.so's _dl_debug_state ").str(problem);
    return;
  }
  if (!write_code(uintptr_t(at), jump, n)) {
    out->why_not_loader.str("ld.so's text could not be written");
    return;
  }
  out->loader = true;
}

}  // namespace

void install(const char* test_alter, Outcome* out) {
  Target targets[] = {
      {"mmap64", SYS_mmap, reinterpret_cast<void*>(&hooks::uffdlazy_libc_mmap64)},
      {"munmap", SYS_munmap, reinterpret_cast<void*>(&hooks::uffdlazy_libc_munmap)},
      {"mremap", SYS_mremap, reinterpret_cast<void*>(&hooks::uffdlazy_libc_mremap)},
      {"madvise", SYS_madvise, reinterpret_cast<void*>(&hooks::uffdlazy_libc_madvise)},
      {"brk", SYS_brk, reinterpret_cast<void*>(&hooks::uffdlazy_libc_brk)},
  };
  LineWriter& why = out->why_not_libc;
  if (!single_threaded()) {
    why.str("threads were already running when the shim started");
    return;
  }
  void* libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  if (!libc) {
    why.str("libc.so.6 (glibc) is not loaded");
    return;
  }
  bool ok = true;
  for (Target& t : targets) ok = ok && find_body(libc, &t, &why) && verify(&t, test_alter, &why);
  for (size_t i = 0; ok && i < sizeof targets / sizeof targets[0]; i++) {
    for (size_t j = 0; ok && j < i; j++) {
      if (targets[i].body == targets[j].body) {
        why.str("libc's ").str(targets[i].name).str(" and ").str(targets[j].name).str(" share one body");
        ok = false;
      }
    }
  }
  // brk's hook keeps glibc's record of the break, as glibc's brk does.
  void** curbrk = ok ? static_cast<void**>(dlvsym(RTLD_DEFAULT, "__curbrk", kGlibcVersion)) : nullptr;
  if (ok && !curbrk) {
    why.str("libc has no __curbrk@").str(kGlibcVersion);
    ok = false;
  }
  dlclose(libc);
  if (!ok) return;
  hooks::init_break(curbrk);

  // All or nothing: a body that cannot be written puts back the ones already written.
  const size_t n = jump_size(kHostArch);
  size_t written = 0;
  for (Target& t : targets) {
    memcpy(t.saved, t.body, n);
    unsigned char jump[16];
    encode_jump(kHostArch, reinterpret_cast<uintptr_t>(t.hook), jump);
    if (!write_code(uintptr_t(t.body), jump, n)) break;
    written++;
  }
  if (written < sizeof targets / sizeof targets[0]) {
    for (size_t i = 0; i < written; i++) write_code(uintptr_t(targets[i].body), targets[i].saved, n);
    why.str("libc's text could not be written (mprotect and /proc/self/mem were refused)");
    return;
  }
  out->libc = true;
  install_loader_hook(out);
}

}  // namespace uffdlazy::detour
