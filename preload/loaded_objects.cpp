#include "preload/loaded_objects.h"

#include <dlfcn.h>
#include <link.h>
#include <sys/auxv.h>

#include "core/base/align.h"
#include "core/pager/lazy_pager.h"

namespace uffdlazy {

namespace {

constexpr size_t kMaxRanges = 256;

struct Objects {
  ElfW(Addr) loader_bias = 0, libc_bias = 0, shim_bias = 0;
  uintptr_t vdso = 0;
  r_debug* debug = nullptr;
  bool loader_known = false;
  // Scratch for one scan: the loader calls its hook with its lock held, so scans never overlap.
  pager::AddressRange ranges[kMaxRanges] = {};
  size_t count = 0;
};
constinit Objects g_objects;

uint64_t page_size() { return getauxval(AT_PAGESZ); }

bool excluded(const dl_phdr_info* info) {
  const Objects& o = g_objects;
  if (info->dlpi_addr == o.libc_bias || info->dlpi_addr == o.shim_bias) return true;
  if (o.loader_known && info->dlpi_addr == o.loader_bias) return true;
  return o.vdso && reinterpret_cast<uintptr_t>(info->dlpi_phdr) >= o.vdso &&
         reinterpret_cast<uintptr_t>(info->dlpi_phdr) < o.vdso + page_size() * 4;
}

int collect_bss(dl_phdr_info* info, size_t, void*) {
  Objects& o = g_objects;
  if (excluded(info)) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_W) || ph.p_memsz <= ph.p_filesz) continue;
    if (o.count >= kMaxRanges) return 1;
    const uintptr_t file_end = info->dlpi_addr + ph.p_vaddr + ph.p_filesz;
    const uintptr_t mem_end = info->dlpi_addr + ph.p_vaddr + ph.p_memsz;
    o.ranges[o.count++] = {file_end, uintptr_t(align_up(mem_end, page_size()))};
  }
  return 0;
}

int note_shim_memory(dl_phdr_info* info, size_t, void*) {
  if (info->dlpi_addr != g_objects.shim_bias) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_W)) continue;
    const uintptr_t s = info->dlpi_addr + ph.p_vaddr, e = s + ph.p_memsz;
    pager::note_own_memory({uintptr_t(align_down(s, page_size())), uintptr_t(align_up(e, page_size()))});
  }
  return 1;
}

// libc's code: what it maps is the allocator's (see pager::note_allocator_code).
int note_libc_code(dl_phdr_info* info, size_t, void*) {
  if (info->dlpi_addr != g_objects.libc_bias) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    const uintptr_t s = info->dlpi_addr + ph.p_vaddr, e = s + ph.p_memsz;
    pager::note_allocator_code({uintptr_t(align_down(s, page_size())), uintptr_t(align_up(e, page_size()))});
  }
  return 1;
}

void collect_all() {
  g_objects.count = 0;
  dl_iterate_phdr(collect_bss, nullptr);
}

}  // namespace

bool init_loaded_objects() {
  Objects& o = g_objects;
  o.vdso = getauxval(AT_SYSINFO_EHDR);
  Dl_info info;
  link_map* lm = nullptr;
  if (!dladdr1(reinterpret_cast<void*>(&init_loaded_objects), &info, reinterpret_cast<void**>(&lm), RTLD_DL_LINKMAP) ||
      !lm)
    return false;
  o.shim_bias = lm->l_addr;
  dl_iterate_phdr(note_shim_memory, nullptr);
  void* libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  if (!libc) return false;
  lm = nullptr;
  const bool have_libc = dlinfo(libc, RTLD_DI_LINKMAP, &lm) == 0 && lm;
  if (have_libc) o.libc_bias = lm->l_addr;
  dlclose(libc);
  if (!have_libc) return false;
  dl_iterate_phdr(note_libc_code, nullptr);
  // ld.so: the object that defines _r_debug (whether it was started by the kernel or by hand).
  o.debug = static_cast<r_debug*>(dlsym(RTLD_DEFAULT, "_r_debug"));
  lm = nullptr;
  if (o.debug && dladdr1(o.debug, &info, reinterpret_cast<void**>(&lm), RTLD_DL_LINKMAP) && lm) {
    o.loader_bias = lm->l_addr;
    o.loader_known = true;
  }
  return o.loader_known;
}

void adopt_startup_memory() {
  collect_all();
  pager::adopt_existing(g_objects.ranges, g_objects.count, true);
}

void adopt_new_objects() {
  // The loader calls its hook before it maps a new object (RT_ADD) and once the list is
  // consistent again: only the latter has anything new to see.
  if (g_objects.debug && g_objects.debug->r_state == r_debug::RT_ADD) return;
  collect_all();
  pager::adopt_existing(g_objects.ranges, g_objects.count, false);
}

void* loader_debug_state() { return g_objects.debug ? reinterpret_cast<void*>(g_objects.debug->r_brk) : nullptr; }

}  // namespace uffdlazy
