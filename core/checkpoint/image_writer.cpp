#include "core/checkpoint/image_writer.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <new>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "core/base/aside_mmap.h"
#include "core/base/line_writer.h"
#include "core/base/mono_clock.h"
#include "core/base/present_pages.h"
#include "core/base/raw_syscall.h"
#include "core/snapshot/executable_identity.h"
#include "core/snapshot/process_format.h"
#include "core/snapshot/snapshot_page_source.h"
#include "core/snapshot/snapshot_writer.h"

namespace uffdlazy::ckpt {

namespace {

struct ChildState {
  snap::SnapshotWriter writer;
  snap::ModuleIdentity executable;
  PresentPages present;
  unsigned char resident[512];
  alignas(4096) unsigned char zeros[4096];
};

// The child's state and stack live in an arena of their own, which the image maps but does not
// store: the child changes them while it writes, and a page must not change between being
// checksummed and being stored.
constexpr uint64_t kStackBytes = 256 * 1024;
struct Arena {
  uint8_t* base = nullptr;
  uint64_t bytes = 0;
};
constinit Arena g_arena;
ChildState* g_child = nullptr;
const ImageInput* g_input = nullptr;

#if defined(__x86_64__)
// long uffdlazy_clone_on_stack(flags, stack_top, fn, arg): clone(2) whose child calls fn(arg) on
// the given stack and never returns.
extern "C" long uffdlazy_clone_on_stack(unsigned long flags, void* stack_top, void (*fn)(void*), void* arg);
__asm__(
    ".text\n"
    ".globl uffdlazy_clone_on_stack\n"
    ".hidden uffdlazy_clone_on_stack\n"
    ".type uffdlazy_clone_on_stack,@function\n"
    "uffdlazy_clone_on_stack:\n"
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
    "  ud2\n"
    "1:\n"
    "  ret\n"
    ".size uffdlazy_clone_on_stack, .-uffdlazy_clone_on_stack\n");
#endif

// Pages of one planned region as the writer asks for them: the process's own pages in memory
// (or swapped), and in a resumed process the pages it has not been served yet.
class PlannedPages final : public snap::PageProvider {
 public:
  PlannedPages(const PlannedRegion* r, const ImageInput* i) : region(r), in(i) {}
  const PlannedRegion* region;
  const ImageInput* in;
  uint64_t unchanged_at = 0;  // where the search of in->unchanged resumes (pages come in order)

  bool owes() const { return region->lazy && region->source != -1 && in->owed; }
  bool owed(uint64_t i) const { return owes() && in->owed->is_owed(region->source, region->source_page + i); }

  // Shared memory holds pages this process may not have mapped (written through another mapping,
  // dropped with MADV_DONTNEED, swapped out): its own pages are those mincore finds in it, once
  // MADV_WILLNEED has brought the swapped ones back. (Its pages are page-cache pages of shmem,
  // which pagemap does not count as the process's own.)
  unsigned char resident(uint64_t i) {
    ChildState& c = *g_child;
    if (i < resident_first || i >= resident_first + sizeof c.resident) {
      resident_first = i;
      const uint64_t pages = (region->end - region->start) / in->page_size;
      const uint64_t n = pages - i < sizeof c.resident ? pages - i : sizeof c.resident;
      void* at = reinterpret_cast<void*>(region->start + i * in->page_size);
      sys::madvise(at, n * in->page_size, MADV_WILLNEED);
      if (sys::mincore(at, n * in->page_size, c.resident) < 0) memset(c.resident, 1, n);
    }
    return c.resident[i - resident_first] & 1;
  }
  uint64_t resident_first = ~uint64_t(0);

  bool holds(uint64_t i) {
    if (region->shared) return resident(i);
    return PresentPages::own(g_child->present.entry(region->start + i * in->page_size));
  }

  const void* page(uint64_t i) override {
    const uint64_t addr = region->start + i * in->page_size;
    if (holds(i)) return reinterpret_cast<const void*>(addr);
    if (owed(i)) {
      const snap::PageRef ref = in->owed->reader()->page(uint64_t(region->source), region->source_page + i);
      if (ref.kind == snap::PageKind::kZero) return g_child->zeros;
      if (!ref.data) fail(EIO);  // in an ancestor that is not open: never store it as absent
      return ref.data;
    }
    return nullptr;
  }

  // Only pages in memory and pages still owed can be stored: the rest of a large, mostly empty
  // region is skipped without being looked at page by page (shared memory is looked at page by
  // page: see resident()).
  uint64_t next(uint64_t from, uint64_t end) override {
    if (region->shared) return from;
    const uint64_t ps = in->page_size;
    uint64_t at = (g_child->present.next(region->start + from * ps, region->start + end * ps, true) - region->start) / ps;
    if (owes()) {
      const uint64_t first = region->source_page;
      const uint64_t owed = in->owed->first_owed(region->source, first + from, first + at) - first;
      if (owed < at) at = owed;
    }
    return at;
  }

  // Left in the base image: a page never served since the base (owed), or one the kernel saw no
  // write to since it was put in place from the base (installed write-protected by the monitor,
  // or protected when the base was written).
  bool unchanged(uint64_t i, snap::PageEntry* in_base) override {
    if (!in->base || region->lazy != 1 || region->source < 0) return false;
    bool same = owed(i);
    if (!same) {
      const uint64_t addr = region->start + i * in->page_size;
      const pagemap::Range* r = in->unchanged;
      while (unchanged_at < in->unchanged_count && r[unchanged_at].end <= addr) unchanged_at++;
      same = unchanged_at < in->unchanged_count && r[unchanged_at].start <= addr;
    }
    if (!same) return false;
    *in_base = in->base->entry(uint64_t(region->source), region->source_page + i);
    return snap::entry_kind(*in_base) != snap::PageKind::kAbsent;
  }

  bool any_stored() {
    if (region->shared) {
      const uint64_t pages = (region->end - region->start) / in->page_size;
      for (uint64_t i = 0; i < pages; i++) {
        if (resident(i)) return true;
      }
      return false;
    }
    const uint64_t end = region->end;
    return g_child->present.next(region->start, end, true) < end;
  }
};

// Writes plan[i] as the next region of the image.
void write_region(const ImageInput& in, uint32_t i, uint64_t* lazy_pages, void (*fail)(const snap::WriteStatus&)) {
  ChildState& c = *g_child;
  const PlannedRegion& r = in.plan[i];
  PlannedPages pages(&r, &in);
  // This is the child's private copy: make it readable whatever the program's protections. A
  // region the shim registered keeps the protection it was mapped with, while the program may
  // have changed it for some of its pages since (mprotect PROT_NONE): such a region is made
  // readable whole (it is the program's data; the writer never writes there). Any other region
  // is one mapping's piece, whose protection is the mapping's.
  if (r.lazy == 1 || !(r.prot & PROT_READ)) sys::call6(SYS_mprotect, long(r.start), long(r.end - r.start), PROT_READ);
  snap::RegionInfo info;
  info.start = r.start;
  info.length = r.end - r.start;
  info.prot = r.prot;
  info.map_flags = r.map_flags;
  // The restorer puts eager regions in place itself: their mostly zero pages are stored packed
  // (only their non-zero bytes). Lazy ones are served from the file mapping, whole blocks.
  info.pack = !r.lazy;
  const snap::WriterStats before = c.writer.stats();
  const snap::WriteStatus st = c.writer.add_region(info, pages);
  if (!st.ok()) fail(st);
  const snap::WriterStats& after = c.writer.stats();
  if (r.lazy) {
    *lazy_pages += after.data_pages + after.duplicate_pages + after.parent_pages - before.data_pages -
                   before.duplicate_pages - before.parent_pages;
  }
}

[[noreturn]] void fail_child(const snap::WriteStatus& st) {
  const ImageInput& in = *g_input;
  LineWriter w;
  w.str("uffdlazy: checkpoint ").str(in.path).str(": ");
  snap::describe(st, w);
  w.emit(in.message_fd);
  g_child->writer.abort();
  for (;;) sys::exit_group(1);
}

[[noreturn]] void child_main(void*) {
  const ImageInput& in = *g_input;
  ChildState& c = *new (g_arena.base) ChildState();
  g_child = &c;
  if (snap::read_module_identity(in.executable, &c.executable) < 0 && !c.executable.path_length) {
    c.executable.set_path("unknown", 7);
  }
  snap::WriterOptions options;
  options.file_mode = 0600;
  snap::WriteStatus st = c.writer.open(in.path, options);
  if (!st.ok()) fail_child(st);
  st = c.writer.begin(c.executable, snap::kFlagProcessImage);
  if (!st.ok()) fail_child(st);
  if (in.base) {
    st = c.writer.set_ancestors(in.ancestors, in.ancestor_count);
    if (!st.ok()) fail_child(st);
  }
  const int pagemap = c.present.open(in.page_size);
  if (pagemap < 0) fail_child(snap::WriteStatus{snap::WriteError::kSourceFailed, -pagemap});
  uint64_t lazy_pages = 0;  // stored pages of the lazy regions: what the resumed monitor serves
  for (uint32_t i = 0; i < in.plan_count; i++) {
    if (in.plan[i].lazy) write_region(in, i, &lazy_pages, fail_child);
  }
  for (uint32_t i = 0; i < in.plan_count; i++) {
    const PlannedRegion& r = in.plan[i];
    if (r.lazy) continue;
    // Eager regions with nothing of their own (reservations, untouched memory, file pages the
    // process never changed) need no record: the restorer maps them empty or from the file.
    PlannedPages pages(&r, &in);
    if (!pages.any_stored()) continue;
    write_region(in, i, &lazy_pages, fail_child);
  }
  const uint32_t types[ImageInput::kSections] = {
      uint32_t(snap::ProcessSection::kProcess),     uint32_t(snap::ProcessSection::kThreads),
      uint32_t(snap::ProcessSection::kMappings),    uint32_t(snap::ProcessSection::kDescriptors),
      uint32_t(snap::ProcessSection::kObjects),     uint32_t(snap::ProcessSection::kObjectData)};
  for (int i = 0; i < ImageInput::kSections; i++) {
    if (types[i] == uint32_t(snap::ProcessSection::kObjectData) && !in.lengths[i]) continue;  // nothing held
    st = c.writer.add_section(types[i], snap::kSectionRequired, in.sections[i], in.lengths[i]);
    if (!st.ok()) fail_child(st);
  }
  st = c.writer.commit();
  if (!st.ok()) fail_child(st);
  const snap::WriterStats& s = c.writer.stats();
  LineWriter w;
  w.str("uffdlazy: checkpoint ").str(in.path).str(" written: ").u64(in.program_thread_count)
      .str(in.program_thread_count == 1 ? " thread, " : " threads, ")
      .u64(in.mapping_count).str(" mappings, ").u64(s.data_pages + s.duplicate_pages + s.parent_pages + s.packed_pages)
      .str(" pages stored (").u64(lazy_pages).str(" to be served lazily");
  if (in.base) w.str(", ").u64(s.parent_pages).str(" of them unchanged, left in ").str(in.ancestors[0].path);
  w.str("), ").u64(s.file_size).str(" bytes");
  if (in.started_ns) w.str(", in ").u64((mono_now_ns() - in.started_ns) / 1000000).str(" ms");
  w.emit(in.message_fd);
  for (;;) sys::exit_group(0);
}

}  // namespace

long lazy_image_region(const PlannedRegion* plan, uint32_t i) {
  if (!plan[i].lazy) return -1;
  long k = 0;
  for (uint32_t j = 0; j < i; j++) k += plan[j].lazy ? 1 : 0;
  return k;
}

bool prepare_image_writer() {
  if (g_arena.base) return true;
  const uint64_t bytes = (sizeof(ChildState) + 4095) / 4096 * 4096 + kStackBytes;
  long m = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sys::failed(m)) return false;
  g_arena.base = reinterpret_cast<uint8_t*>(m);
  g_arena.bytes = bytes;
  return true;
}

void image_writer_arena(uint64_t* start, uint64_t* end) {
  *start = reinterpret_cast<uint64_t>(g_arena.base);
  *end = *start + g_arena.bytes;
}

long start_image_writer(const ImageInput& in) {
#if defined(__x86_64__)
  // A bare clone: no fork handlers (the program's threads are stopped, perhaps holding the locks
  // those would take); the child uses raw system calls and its own copy of memory only. No exit
  // signal: its end must not reach the program as a SIGCHLD (it would interrupt its blocking
  // calls, or run its handler), and only __WALL waits for such a child, so the program's own
  // waitpid(-1) never reaps it.
  g_input = &in;
  return uffdlazy_clone_on_stack(0, g_arena.base + g_arena.bytes, child_main, nullptr);
#else
  (void)in;
  return -ENOSYS;
#endif
}

int wait_image_writer(long pid, const ImageInput& in) {
  int status = 0;
  long r;
  do {
    r = sys::call6(SYS_wait4, pid, reinterpret_cast<long>(&status), __WALL, 0);
  } while (r == -EINTR);
  if (r < 0) return int(r);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  // Whatever stopped the writer, its temporary file goes (the writer's own name for it:
  // core/snapshot/snapshot_writer.cpp).
  char tmp[1100];
  LineWriter name;
  name.str(in.path).str(".tmp.").u64(uint64_t(pid));
  const size_t n = name.size() < sizeof tmp - 1 ? name.size() : sizeof tmp - 1;
  memcpy(tmp, name.data(), n);
  tmp[n] = 0;
  sys::unlinkat(AT_FDCWD, tmp, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  // Killed: it said nothing itself.
  LineWriter w;
  w.str("uffdlazy: checkpoint ").str(in.path).str(": the image writer was killed by signal ").i64(WTERMSIG(status))
      .str("; no image written");
  w.emit(in.message_fd);
  return 128 + WTERMSIG(status);
}

}  // namespace uffdlazy::ckpt
