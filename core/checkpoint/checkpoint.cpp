#include "core/checkpoint/checkpoint.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <linux/futex.h>
#include <sys/mman.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "core/base/aside_mmap.h"
#include "core/base/decimal.h"
#include "core/base/hidden_thread.h"
#include "core/base/immortal.h"
#include "core/base/line_writer.h"
#include "core/base/mono_clock.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/descriptor_capture.h"
#include "core/checkpoint/image_writer.h"
#include "core/checkpoint/jump_context.h"
#include "core/checkpoint/mapping_capture.h"
#include "core/checkpoint/object_capture.h"
#include "core/checkpoint/object_table.h"
#include "core/checkpoint/proc_file.h"
#include "core/checkpoint/process_capture.h"
#include "core/checkpoint/process_settings.h"
#include "core/checkpoint/resume_block.h"
#include "core/checkpoint/resume_source.h"
#include "core/checkpoint/table_builder.h"
#include "core/checkpoint/thread_stop.h"
#include "core/checkpoint/tree.h"
#include "core/monitor/monitor.h"
#include "core/snapshot/grow_buffer.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy::ckpt {

namespace {

constexpr uint32_t kMaxPinned = 2 * (kMaxThreads + 8) + 2;

struct State {
  char path[1024] = {};
  bool then_stop = true;
  uint64_t stop_timeout_ns = 0;
  Hooks hooks;
  ShimAccess access;
  TableBuilder process, threads, mappings, descriptors;
  ObjectTable objects;
  bool written = false;
  bool resumed = false;  // this process was resumed from an image (its own checkpoint was taken)
  uint32_t capture_old_tid = 0;
  uint64_t pinned[kMaxPinned] = {};
  uint64_t never_raised = 0;  // signals not raised again at resume: the stop and trigger signals
  uint32_t pinned_count = 0;
  // Incremental checkpoints (Settings::incremental). The base is the image the lazy table
  // regions' sources (Region::source) refer to, page for page, and against which the kernel
  // tracks writes: the image this process was resumed from, or the first one it wrote (adopted).
  bool incremental = false;
  bool said_untracked = false;  // the line saying writes are not tracked here was printed
  uint32_t taken = 0;           // images written by this generation (the next name: path, path.2, ...)
  const snap::SnapshotReader* base = nullptr;
  char base_path[1024] = {};
  char out_path[1100] = {};     // where this checkpoint writes
  uint64_t started_ns = 0;
  snap::AncestorInfo ancestors[snap::kMaxAncestors] = {};
  // A tree checkpoint (tree.h): the live members asked to stop (in the root), their pids.
  uint32_t tree_live = 0;
  int32_t tree_pids[kMaxMembers] = {};
  bool member_recording = false;  // a member told to record and write: it must say when done
};
constinit State g;
// The image a process that was not resumed (or was resumed eagerly) adopted as its base.
constinit Immortal<snap::SnapshotReader> g_adopted;
// The page ranges of the lazy table regions the kernel saw no write to since the base.
snap::GrowBuffer g_unchanged;

void say(const LineWriter& body, int fd) {
  LineWriter w;
  w.str("uffdlazy: checkpoint ").str(g.path).str(": ").str(body.data(), body.size());
  w.emit(fd);
}

// A checkpoint that cannot be taken: the threads are let go (or already were) and, in stop mode,
// the process ends with status 2 rather than run on as if it had been saved.
void abandon_tree();

void member_done(bool ok);

void refuse(const LineWriter& why) {
  abandon_tree();
  if (g.member_recording) {
    g.member_recording = false;
    member_done(false);
  }
  LineWriter w;
  w.str("refused: ").str(why.data(), why.size());
  say(w, g.access.message_fd);
  if (g.then_stop) {
    for (;;) sys::exit_group(2);
  }
}

// IMG.PID: where the member `pid` writes its image.
void member_path(char* out, size_t cap, int32_t pid) {
  const size_t n = strnlen(g.path, sizeof g.path);
  if (n + 24 > cap) {
    out[0] = 0;
    return;
  }
  memcpy(out, g.path, n);
  out[n] = '.';
  out[n + 1 + format_u64(out + n + 1, uint64_t(pid))] = 0;
}

// Whether `pid` runs (not a zombie, not gone).
bool running(int32_t pid) {
  char path[48] = "/proc/";
  const size_t n = 6 + format_u64(path + 6, uint64_t(pid));
  memcpy(path + n, "/stat", 6);
  char text[512];
  const long r = read_small_file(path, text, sizeof text - 1);
  if (r <= 0) return false;
  text[r] = 0;
  const char* close = strrchr(text, ')');
  return close && close[1] == ' ' && close[2] != 'Z' && close[2] != 'X';
}

uint32_t list_live_members(int32_t* out) {
  TreePage* page = tree_page();
  uint32_t live = 0;
  if (!page) return 0;
  const uint32_t n = __atomic_load_n(&page->count, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < n && i < kMaxMembers; i++) {
    const int32_t pid = __atomic_load_n(&page->members[i], __ATOMIC_ACQUIRE);
    if (pid > 0 && running(pid)) out[live++] = pid;
  }
  return live;
}

// The root: asks every live member to stop, and waits until each has (all processes of the tree
// are then stopped: one instant). False (with why; the members are let go) if one did not in time.
bool stop_members(LineWriter* why) {
  TreePage* page = tree_page();
  __atomic_store_n(&page->go, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&page->stopped, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&page->done, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&page->failed, 0, __ATOMIC_RELEASE);
  __atomic_fetch_add(&page->epoch, 1, __ATOMIC_ACQ_REL);
  tree_wake(&page->epoch);
  const uint64_t end = mono_now_ns() + g.stop_timeout_ns;
  for (;;) {
    const uint32_t now = __atomic_load_n(&page->stopped, __ATOMIC_ACQUIRE);
    if (now >= g.tree_live) break;
    const uint64_t t = mono_now_ns();
    if (t >= end || !tree_wait(&page->stopped, now, end - t)) {
      if (__atomic_load_n(&page->stopped, __ATOMIC_ACQUIRE) >= g.tree_live) break;
      __atomic_store_n(&page->go, 2, __ATOMIC_RELEASE);
      tree_wake(&page->go);
      g.tree_live = 0;
      why->str("a process of the tree did not stop within ").u64(g.stop_timeout_ns / 1000000)
          .str(" ms (it runs another program, or blocks the stop signal)");
      return false;
    }
  }
  // A member that forked meanwhile made one the count did not ask.
  int32_t again[kMaxMembers];
  if (list_live_members(again) != g.tree_live) {
    __atomic_store_n(&page->go, 2, __ATOMIC_RELEASE);
    tree_wake(&page->go);
    g.tree_live = 0;
    why->str("a process of the tree made a child while it was being stopped");
    return false;
  }
  __atomic_store_n(&page->go, 1, __ATOMIC_RELEASE);
  tree_wake(&page->go);
  return true;
}

// The root: waits until every member has written its image (or failed); true if all did.
bool members_written() {
  TreePage* page = tree_page();
  for (;;) {
    const uint32_t done = __atomic_load_n(&page->done, __ATOMIC_ACQUIRE);
    if (done >= g.tree_live) break;
    tree_wait(&page->done, done, 0);
  }
  return __atomic_load_n(&page->failed, __ATOMIC_ACQUIRE) == 0;
}

void remove_member_images() {
  char path[1100];
  for (uint32_t i = 0; i < g.tree_live; i++) {
    member_path(path, sizeof path, g.tree_pids[i]);
    if (path[0]) sys::call6(SYS_unlinkat, AT_FDCWD, long(path), 0);
  }
}

// The root refuses after the members were told to go on: no member image may stay.
void abandon_tree() {
  if (!g.tree_live) return;
  members_written();
  remove_member_images();
  g.tree_live = 0;
}

// A member: stopped; waits for the root's word. True: record and write; false: let go.
bool member_stopped() {
  TreePage* page = tree_page();
  __atomic_fetch_add(&page->stopped, 1, __ATOMIC_ACQ_REL);
  tree_wake(&page->stopped);
  tree_wait(&page->go, 0, 0);
  return __atomic_load_n(&page->go, __ATOMIC_ACQUIRE) == 1;
}

// A member is done (its image written, or not).
void member_done(bool ok) {
  TreePage* page = tree_page();
  if (!page) return;
  if (!ok) __atomic_fetch_add(&page->failed, 1, __ATOMIC_ACQ_REL);
  __atomic_fetch_add(&page->done, 1, __ATOMIC_ACQ_REL);
  tree_wake(&page->done);
}

const char* executable_path() {
  // The file mapped at the start of the text: /proc/self/exe names the restorer in a process
  // that was itself resumed.
  const uint64_t code = g.process.count() ? static_cast<snap::ProcessRecord*>(g.process.record(0))->mm.start_code : 0;
  for (uint32_t i = 0; i < g.mappings.count(); i++) {
    const auto* m = static_cast<const snap::MappingRecord*>(g.mappings.record(i));
    if (code >= m->start && code < m->end && m->path.length) return g.mappings.string_at(m->path);
  }
  return "";
}

// Signals pending for one thread, from /proc/self/task/TID/status.
uint64_t pending_signals(uint32_t tid) {
  char path[64] = "/proc/self/task/";
  char digits[16];
  size_t n = 16, k = 0;
  for (uint32_t v = tid; v; v /= 10) digits[k++] = char('0' + v % 10);
  while (k) path[n++] = digits[--k];
  memcpy(path + n, "/status", 8);
  static char text[4096];
  if (read_small_file(path, text, sizeof text) <= 0) return 0;
  const char* p = strstr(text, "\nSigPnd:");
  if (!p) return 0;
  p += 8;
  while (*p == ' ' || *p == '\t') p++;
  return parse_number(&p, p + 16, 16);
}

// Whether two paths name the same existing file.
bool same_file(const char* a, const char* b) {
  struct stat sa, sb;
  if (sys::call6(SYS_newfstatat, AT_FDCWD, long(a), long(&sa), 0) < 0) return false;
  if (sys::call6(SYS_newfstatat, AT_FDCWD, long(b), long(&sb), 0) < 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// Whether writing `path` would replace an image this process builds on (its base or one of the
// base's ancestors): images written before it would then lose theirs.
bool builds_on(const char* path) {
  if (!g.base) return false;
  if (same_file(path, g.base_path)) return true;
  for (uint32_t i = 0; i < g.base->ancestor_count(); i++) {
    const snap::AncestorView v = g.base->ancestor(i);
    if (same_file(path, v.opened_path ? v.opened_path : v.path)) return true;
  }
  return false;
}

// Where this checkpoint writes (g.out_path): the path it was given. With incremental checkpoints,
// the generation's later images go to path.2, path.3, ..., and none replaces an image the process
// builds on (it takes the next number instead).
void choose_path(bool incremental) {
  const size_t n = strnlen(g.path, sizeof g.path);
  for (uint64_t k = g.taken + 1;; k++) {
    memcpy(g.out_path, g.path, n + 1);
    if (incremental && k > 1) {
      g.out_path[n] = '.';
      g.out_path[n + 1 + format_u64(g.out_path + n + 1, k)] = 0;
    }
    if (!incremental || !builds_on(g.out_path) || k > 1000000) return;
  }
}

// PAGEMAP_SCAN over [start, end) of the calling process, `fn` called with each batch of ranges.
// False when the kernel has no PAGEMAP_SCAN (before 6.7) or the scan failed.
template <class Fn>
bool scan(int pagemap_fd, uint64_t start, uint64_t end, pagemap::ScanArg arg, Fn&& fn) {
  pagemap::Range found[256];
  for (uint64_t at = start; at < end;) {
    arg.size = sizeof arg;
    arg.start = at;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(found);
    arg.vec_len = sizeof found / sizeof found[0];
    const long n = sys::ioctl(pagemap_fd, pagemap::kScanIoctl, &arg);
    if (n < 0) return false;
    if (!fn(found, uint64_t(n))) return false;
    if (arg.walk_end <= at) break;
    at = arg.walk_end;
  }
  return true;
}

// The pages of [start, end) in memory (or swapped) that the kernel saw no write to since they
// were write-protected, appended to g_unchanged. Memory not registered for asynchronous
// write-protect has no such pages (its writes are not seen).
bool scan_unchanged(int pagemap_fd, uint64_t start, uint64_t end) {
  pagemap::ScanArg arg = {};
  arg.category_inverted = pagemap::kWritten;
  arg.category_mask = pagemap::kWritten | pagemap::kWpAllowed;
  arg.category_anyof_mask = pagemap::kPresent | pagemap::kSwapped;
  arg.return_mask = pagemap::kPresent | pagemap::kSwapped;
  return scan(pagemap_fd, start, end, arg, [](const pagemap::Range* r, uint64_t n) {
    return g_unchanged.append(r, n * sizeof *r) == 0;
  });
}

// Write-protects the pages of [start, end) in memory (or swapped): from now on the kernel notes
// which of them the program writes. Holes stay holes (a protected hole would be a marker the
// monitor's zero pages cannot fill).
bool protect_present(int pagemap_fd, uint64_t start, uint64_t end) {
  pagemap::ScanArg arg = {};
  arg.flags = pagemap::kWpMatching;
  arg.category_anyof_mask = pagemap::kPresent | pagemap::kSwapped;
  arg.return_mask = pagemap::kPresent | pagemap::kSwapped;
  return scan(pagemap_fd, start, end, arg, [](const pagemap::Range*, uint64_t) { return true; });
}

// The base this checkpoint refers to, and its ancestors, as the image records them.
uint32_t ancestry() {
  const snap::SnapshotReader& b = *g.base;
  snap::AncestorInfo& self = g.ancestors[0];
  self.record = snap::AncestorRecord{};
  self.record.header_checksum = b.header().header_checksum;
  self.record.file_size = b.file_size();
  self.record.created_ns = b.header().created_ns;
  self.record.data_offset = b.data_offset();
  self.record.data_length = b.data_length();
  self.path = g.base_path;
  uint32_t n = 1;
  for (uint32_t i = 0; i < b.ancestor_count() && n < snap::kMaxAncestors; i++, n++) {
    const snap::AncestorView v = b.ancestor(i);
    g.ancestors[n].record = *v.record;
    g.ancestors[n].path = v.opened_path ? v.opened_path : v.path;
  }
  return n;
}

// The image just written becomes the base (the first image of a process not resumed lazily): the
// lazy table regions were pointed at its regions, and their pages protected, while it was taken.
void adopt(const char* path) {
  snap::SnapshotReader* r = g_adopted.construct();
  if (!r->open(path).ok()) return;
  g.base = r;
  const size_t n = strnlen(path, sizeof g.base_path - 1);
  memcpy(g.base_path, path, n);
  g.base_path[n] = 0;
}

// The checkpoint thread of a resumed process, back at its save point.
void finish_resume() {
  ResumeBlock& b = resume_block();
  // Before any program thread runs again: it may end at once, and its exit status depends on this.
  g.written = false;
  g.resumed = true;
  g.tree_live = 0;
  g.member_recording = false;
  forget_tree();
  // A new generation: it builds on the image it was resumed from when writes are tracked against
  // it (lazily served, pages installed write-protected); whatever this process adopted before
  // came back without its mappings (left out of the image) and is forgotten.
  g.taken = 0;
  g.base = nullptr;
  g.base_path[0] = 0;
  if (b.flags & kResumeIncremental) g.incremental = true;
  if (g.incremental && resume_source() && (b.uffd_features & kFeatureWpAsync) && resume_image_path()[0]) {
    g.base = resume_reader();
    const size_t len = strnlen(resume_image_path(), sizeof g.base_path - 1);
    memcpy(g.base_path, resume_image_path(), len);
    g.base_path[len] = 0;
  }
  hidden_thread_renumbered(g.capture_old_tid, sys::gettid());
  const size_t n = strnlen(b.checkpoint, sizeof b.checkpoint);
  if (n && n < sizeof g.path) {
    memcpy(g.path, b.checkpoint, n);
    g.path[n] = 0;
  }
  if (g.hooks.pager_resumed) g.hooks.pager_resumed(b);
  __atomic_store_n(&b.capture_done, 1, __ATOMIC_RELEASE);
  sys::futex(&b.capture_done, FUTEX_WAKE_PRIVATE, 1 << 30);
  // The restorer's zone goes once every program thread has jumped out of it.
  for (;;) {
    const uint32_t left = __atomic_load_n(&b.threads_in_zone, __ATOMIC_ACQUIRE);
    if (left == 0) break;
    sys::futex(&b.threads_in_zone, FUTEX_WAIT_PRIVATE, int(left));
  }
  if (b.zone_length) sys::munmap(reinterpret_cast<void*>(b.zone_start), b.zone_length);
}

uint32_t old_tid_of(snap::ThreadRole role) {
  for (uint32_t i = 0; i < thread_count(); i++) {
    if (thread_records()[i].role == uint32_t(role)) return thread_records()[i].old_tid;
  }
  return 0;
}

void wake(uint32_t* word, uint32_t value) {
  __atomic_store_n(word, value, __ATOMIC_RELEASE);
  sys::futex(word, FUTEX_WAKE_PRIVATE, 1 << 30);
}

[[noreturn]] void monitor_cannot_serve(const LineWriter& why) {
  LineWriter w;
  w.str("uffdlazy: resume: the monitor cannot serve the image: ").str(why.data(), why.size())
      .str("; stopping the process rather than let it read wrong pages");
  w.emit(2);
  for (;;) sys::kill(sys::getpid(), SIGKILL);
}

// Maps each table region onto the image region stored for it; a region the image does not serve
// lazily was not registered again, so the table forgets it. Lazy image regions the table did not
// have (memory the program's allocator mapped behind the shim's back) join it.
void rebuild_table(bool lazy) {
  const snap::SnapshotReader* reader = resume_reader();
  const snap::ProcessImage* image = resume_image();
  const ShimAccess& a = g.access;
  RegionTable& table = *a.table;
  LockGuard hold(*a.table_lock);
  const RegionList& live = table.live();
  const uint64_t bytes = (live.size() * sizeof(Region) + a.page_size - 1) / a.page_size * a.page_size;
  Region* copy = nullptr;
  if (bytes) {
    long m = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sys::failed(m)) {
      LineWriter why;
      why.str("no memory to rebuild the region table");
      monitor_cannot_serve(why);
    }
    copy = reinterpret_cast<Region*>(m);
  }
  const size_t n = live.size();
  for (size_t i = 0; i < n; i++) copy[i] = live.at(i);
  table.clear();
  size_t i = 0;
  const uint64_t regions = reader ? reader->region_count() : 0;
  for (uint64_t r = 0; r < regions; r++) {
    const snap::RegionRecord& rec = reader->region(r);
    if (!image->region_lazy(r)) continue;
    while (i < n && copy[i].start < rec.start) i++;
    Region reg;
    if (i < n && copy[i].start == rec.start && copy[i].end == rec.start + rec.length) {
      reg = copy[i];
    } else {
      reg = Region{};
      reg.start = rec.start;
      reg.end = rec.start + rec.length;
      reg.prot = int32_t(rec.prot);
      reg.flags = int32_t(rec.map_flags);
      reg.alloc_length = rec.length;
      reg.id = table.next_id();
    }
    reg.source = lazy ? int32_t(r) : Region::kZeroSource;
    reg.source_page = 0;
    table.insert(reg);
  }
  if (bytes) sys::munmap(copy, bytes);
}

void serve_from(PageSource* source) {
  if (g.hooks.monitor_resumed) g.hooks.monitor_resumed();
  // The resume call's paging settings (resume_protocol.h), not the checkpoint-time ones.
  const uint32_t flags = resume_block().flags;
  PrefetchMode prefetch = PrefetchMode::kAll;
  if (resume_prefetch(flags) == kResumePrefetchNone) prefetch = PrefetchMode::kNone;
  if (resume_prefetch(flags) == kResumePrefetchWorkingSet) prefetch = PrefetchMode::kWorkingSet;
  g.access.monitor->resumed(source, prefetch, resume_readahead(flags));
  wake(&resume_block().monitor_ready, 1);
}

// The monitor of a resumed process, back at its save point, before it serves again.
void monitor_resumed() {
  ResumeBlock& b = resume_block();
  hidden_thread_renumbered(old_tid_of(snap::ThreadRole::kMonitor), sys::gettid());
  if (b.uffd_fd < 0) {
    // No userfaultfd (eager fallback): every page is in place, and nothing can be paged any more.
    if (b.image_fd >= 0) sys::close(b.image_fd);
    wake(&b.monitor_ready, 2);
    g.access.monitor->retire();
  }
  const bool lazy = b.flags & kResumeLazy;
  const bool verify = b.flags & kResumeVerify;
  LineWriter why;
  const bool opened = open_resume_source(b.image_fd, verify, &why);
  sys::close(b.image_fd);
  if (!opened) {
    if (lazy) monitor_cannot_serve(why);
    // Eager: every page is in place. Forgetting the table is safe: a page the program drops from
    // here on reads zeros, as it should.
    LockGuard hold(*g.access.table_lock);
    g.access.table->clear();
  } else {
    rebuild_table(lazy);
  }
  if (!lazy) {
    close_resume_source();
    serve_from(nullptr);
    return;
  }
  PageSource* source = start_resume_source(verify);
  if (!source) {
    why.str("cannot map memory for the page source");
    monitor_cannot_serve(why);
  }
  // Incremental: the image's pages go in write-protected, so that a page the program never
  // writes is known to still be the image's (the restorer registered the ranges for it).
  if ((b.flags & kResumeIncremental) && (b.uffd_features & kFeatureWpAsync) && g.access.uffd) {
    g.access.uffd->protect_source_copies(true);
  }
  serve_from(source);
}

}  // namespace

bool arm_checkpoint(const Settings& settings, const Hooks& hooks) {
  if (!kCanSaveContext) return false;
  const size_t n = strlen(settings.path);
  if (n >= sizeof g.path) return false;
  memcpy(g.path, settings.path, n + 1);
  g.then_stop = settings.then_stop;
  g.incremental = settings.incremental;
  g.stop_timeout_ns = settings.stop_timeout_ns;
  g.hooks = hooks;
  g.never_raised = uint64_t(1) << (kStopSignal - 1);
  if (settings.trigger_signal > 0) g.never_raised |= uint64_t(1) << (settings.trigger_signal - 1);
  set_monitor_resumed_hook(monitor_resumed);
  // The process table's strings hold the supplementary groups (up to 65536 of 4 bytes).
  return prepare_tree() && prepare_thread_stop() && prepare_mapping_capture() && prepare_settings_capture() && prepare_image_writer() &&
         g.process.reserve(sizeof(snap::ProcessRecord), 1, 64 * 1024 + 4 * 65536 + 8) &&
         g.threads.reserve(sizeof(snap::ThreadRecord), kMaxThreads + 8, 4096) &&
         g.mappings.reserve(sizeof(snap::MappingRecord), 1u << 18, 16u << 20) &&
         g.descriptors.reserve(sizeof(snap::DescriptorRecord), 1u << 16, 8u << 20) && g.objects.reserve();
}

// Non-zero from the moment the program runs on beside its image writer until the writer is done
// (set after the writer's clone: the image, and so a resumed process, holds 0).
constinit std::atomic<uint32_t> g_image_being_written{0};

void wait_while_image_written() {
  while (g_image_being_written.load(std::memory_order_acquire))
    sys::futex(&g_image_being_written, FUTEX_WAIT_PRIVATE, 1);
}

bool checkpoint_pending() { return g.path[0] && !g.written && !g.resumed; }

namespace {

// Scoped RegionTable::copy_into_forks(true); back to wiping when the checkpoint is done, here and
// in a resumed process (which returns through this frame).
class TableCopiedIntoForks {
 public:
  explicit TableCopiedIntoForks(RegionTable* t) : table_(t) {
    if (table_) table_->copy_into_forks(true);
  }
  ~TableCopiedIntoForks() {
    if (table_) table_->copy_into_forks(false);
  }
  TableCopiedIntoForks(const TableCopiedIntoForks&) = delete;
  TableCopiedIntoForks& operator=(const TableCopiedIntoForks&) = delete;

 private:
  RegionTable* table_;
};

}  // namespace

void checkpoint_now() {
  g.started_ns = mono_now_ns();
  g.hooks.describe(&g.access);
  const ShimAccess& a = g.access;
  LineWriter why;
  if (!a.uffd_valid) {
    why.str("the program closed the shim's userfaultfd (descriptor ").i64(a.uffd_fd).str(")");
    refuse(why);
    return;
  }
  if (a.restoring) {
    why.str("the program runs under uffdlazy restore; checkpointing it is not supported");
    refuse(why);
    return;
  }
  if (refuse_thread_timers(&why)) {
    refuse(why);
    return;
  }
  if (!stop_program_threads(g.stop_timeout_ns, &why)) {
    refuse(why);
    return;
  }
  if (!leader_stopped()) {
    release_threads();
    why.str("the program's main thread has exited");
    refuse(why);
    return;
  }
  if (!park_monitor(a.monitor, g.stop_timeout_ns, &why)) {
    release_threads();
    refuse(why);
    return;
  }
  // A tree (tree.h): every process of it stops before any records itself.
  g.tree_live = 0;
  g.member_recording = false;
  if (is_member()) {
    if (!tree_page() || !member_stopped()) {
      // The root gave up: this process goes on as if nothing had happened.
      release_threads();
      return;
    }
    g.member_recording = true;
  } else if (tree_page()) {
    // A fork under way when the threads stopped: its child registers (or never will).
    settle_member_slots(g.stop_timeout_ns);
    g.tree_live = list_live_members(g.tree_pids);
    if (g.tree_live && !g.then_stop) {
      g.tree_live = 0;
      release_threads();
      why.str("the process has child processes still running; a checkpoint of a process tree is taken with --then stop "
              "only");
      refuse(why);
      return;
    }
    if (g.tree_live && !stop_members(&why)) {
      release_threads();
      refuse(why);
      return;
    }
  }
  // Every other thread is stopped: what follows sees the process as it will be saved. The
  // image writer (a forked child) and the image need the region table, whose pool is otherwise
  // wiped in forked children (and would read as the program's MADV_WIPEONFORK memory).
  TableCopiedIntoForks table_copied(a.table);
  g.process.clear();
  g.threads.clear();
  g.mappings.clear();
  g.descriptors.clear();
  g.objects.clear();
  g.pinned_count = 0;
  snap::ProcessRecord* proc = capture_process(&g.process, &g.objects, &why);
  if (proc && !capture_settings(&g.process, proc, thread_records(), thread_count(), &why)) proc = nullptr;
  MappingInput mi;
  mi.table = a.table;
  mi.table_lock = a.table_lock;
  mi.page_size = a.page_size;
  // The shim's views of images (the one it serves from, the one it builds on) are its own: a
  // resumed shim maps what it needs again.
  uint64_t skip[4 * snap::SnapshotReader::kMaxMappings];
  uint32_t skips = resume_source_ranges(skip, snap::SnapshotReader::kMaxMappings);
  if (g.base && g.base == g_adopted.get()) {
    skips += g_adopted->mappings(skip + 2 * skips, 2 * snap::SnapshotReader::kMaxMappings - skips);
  }
  if (tree_page() && skips < 2 * snap::SnapshotReader::kMaxMappings) {
    tree_range(&skip[2 * skips], &skip[2 * skips + 1]);
    skips++;
  }
  mi.skip = skip;
  mi.skip_pairs = skips;
  // Mapped again at resume, never stored: the writer's arena, the objects' bytes (in the image's
  // object data section already).
  uint64_t empty[4];
  image_writer_arena(&empty[0], &empty[1]);
  g.objects.data_range(&empty[2], &empty[3]);
  mi.empty = empty;
  mi.empty_pairs = 2;
  // The shim's own static data (the resume block, the monitor, the region table's bookkeeping)
  // is written by the restorer and used by the monitor before it serves anything.
  g.pinned[g.pinned_count++] = reinterpret_cast<uint64_t>(&resume_block());
  g.pinned[g.pinned_count++] = reinterpret_cast<uint64_t>(&g);
  for (uint32_t i = 0; i < thread_count() && g.pinned_count + 2 <= kMaxPinned; i++) {
    const snap::ThreadRecord& t = thread_records()[i];
    if (t.tid_address) g.pinned[g.pinned_count++] = t.tid_address;
    if (t.rseq_area) g.pinned[g.pinned_count++] = t.rseq_area;
  }
  mi.pinned = g.pinned;
  mi.pinned_count = g.pinned_count;
  mi.lazy_min_bytes = a.lazy_min_bytes;
  mi.objects = &g.objects;
  mi.uffd_tracks_writes = a.uffd && a.uffd->tracks_writes();
  ShimDescriptors sd;
  sd.uffd = a.uffd_valid ? a.uffd_fd : -1;
  sd.stderr_copy = a.stderr_copy;
  // Descriptors first: a mapping of a deleted file or memfd that is also open is the same object.
  if (!proc || !capture_descriptors(sd, &g.descriptors, &g.objects, &why) || !capture_leases(&g.descriptors, &why) ||
      !capture_posix_timers(&g.objects, &why) || !capture_mappings(mi, &g.mappings, proc, &why)) {
    release_threads();
    refuse(why);
    return;
  }
  const char* exe = executable_path();
  proc->exe = g.process.add_string(exe, strlen(exe));
  proc->resume_block = reinterpret_cast<uint64_t>(&resume_block());
  proc->doorbell = a.doorbell;
  proc->page_size = a.page_size;
  proc->uffd_fd = a.uffd_fd;
  proc->uffd_origin = a.uffd_origin;
  proc->uffd_features = a.uffd_features;
  proc->then_stop = g.then_stop;
  proc->flags |= g.incremental ? snap::kProcessIncremental : 0;

  snap::ThreadRecord* self = record_checkpoint_thread();
  if (!self) {
    release_threads();
    why.str("more than 4096 threads");
    refuse(why);
    return;
  }
  g.capture_old_tid = self->old_tid;
  if (uffdlazy_save_context(&self->context) != 0) {
    finish_resume();
    return;
  }
  // From here on, this frame's locals are as the resumed thread will find them: nothing below may
  // matter to finish_resume(), which reads globals only.
  const uint32_t nthreads = thread_count();
  uint32_t program_threads = 0;
  for (uint32_t i = 0; i < nthreads; i++) {
    snap::ThreadRecord* t = g.threads.add_record<snap::ThreadRecord>();
    if (t) {
      *t = thread_records()[i];
      t->pending = pending_signals(t->old_tid) & ~g.never_raised;
    }
    const auto role = snap::ThreadRole(thread_records()[i].role);
    if (role == snap::ThreadRole::kLeader || role == snap::ThreadRole::kApp) program_threads++;
  }
  proc->shared_pending &= ~g.never_raised;
  // Incremental: which pages did the program not write since the base? Asked while every thread
  // and the monitor are stopped, before the writer's copy of the address space is taken.
  const bool tracking = g.incremental && a.uffd && a.uffd->tracks_writes();
  if (g.incremental && !tracking && !g.said_untracked) {
    g.said_untracked = true;
    LineWriter w;
    w.str("this kernel does not tell which pages a program wrote (userfaultfd asynchronous write-protect, Linux "
          "6.7): every image is written whole");
    say(w, a.message_fd);
  }
  choose_path(tracking);
  if (g.member_recording) member_path(g.out_path, sizeof g.out_path, int32_t(sys::getpid()));
  // The root writes its image once every member has written its own: none is left without the others.
  if (g.tree_live && !members_written()) {
    remove_member_images();
    g.tree_live = 0;
    for (;;) sys::exit_group(2);
  }
  const PlannedRegion* plan = planned_regions();
  const uint32_t plan_count = planned_region_count();
  bool incremental_now = tracking && g.base;
  const bool adopt_now = tracking && !g.base && !g.then_stop;
  g_unchanged.clear();
  if (incremental_now || adopt_now) {
    const long pagemap_fd = sys::openat(AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    bool ok = pagemap_fd >= 0;
    for (uint32_t i = 0; i < plan_count && ok; i++) {
      const PlannedRegion& r = plan[i];
      if (r.lazy != 1) continue;
      if (adopt_now) {
        ok = protect_present(int(pagemap_fd), r.start, r.end);
        LockGuard hold(*a.table_lock);
        a.table->set_source(r.start, r.end, int32_t(lazy_image_region(plan, i)), 0);
      } else if (r.source >= 0) {
        ok = scan_unchanged(int(pagemap_fd), r.start, r.end);
      }
    }
    if (pagemap_fd >= 0) sys::close(int(pagemap_fd));
    // Without the kernel's answer every page counts as changed: a whole image, still right.
    if (!ok) incremental_now = false;
  }
  ImageInput in;
  in.path = g.out_path;
  in.started_ns = g.started_ns;
  if (incremental_now) {
    in.base = g.base;
    in.ancestor_count = ancestry();
    in.ancestors = g.ancestors;
    in.unchanged = reinterpret_cast<const pagemap::Range*>(g_unchanged.data());
    in.unchanged_count = g_unchanged.size() / sizeof(pagemap::Range);
  }
  in.executable = exe;
  in.sections[0] = g.process.finish(&in.lengths[0]);
  in.sections[1] = g.threads.finish(&in.lengths[1]);
  in.sections[2] = g.mappings.finish(&in.lengths[2]);
  in.sections[3] = g.descriptors.finish(&in.lengths[3]);
  in.sections[4] = g.objects.finish_records(&in.lengths[4]);
  in.sections[5] = g.objects.data();
  in.lengths[5] = (g.objects.data_bytes() + 7) / 8 * 8;
  in.plan = plan;
  in.plan_count = plan_count;
  in.page_size = a.page_size;
  in.owed = resume_source();
  in.thread_count = nthreads;
  in.program_thread_count = program_threads;
  in.mapping_count = g.mappings.count();
  in.message_fd = a.message_fd;
  set_fork_advice(g.mappings, false);  // the writer gets MADV_DONTFORK and WIPEONFORK memory too
  const long pid = start_image_writer(in);
  set_fork_advice(g.mappings, true);
  if (pid < 0) {
    release_threads();
    why.str("cannot start the writer: ").errno_text(int(-pid));
    refuse(why);
    return;
  }
  // The child holds the image as of now: the program may go on while it writes, unless it has
  // shared memory (which the child reads as it is, not a copy of it).
  g.objects.release_data();
  bool shared = false;
  for (uint32_t i = 0; i < g.mappings.count(); i++) {
    shared |= static_cast<const snap::MappingRecord*>(g.mappings.record(i))->kind == uint32_t(snap::MappingKind::kShared);
  }
  if (!g.then_stop) g_image_being_written.store(1, std::memory_order_release);
  if (!g.then_stop && !shared) release_threads();
  const int status = wait_image_writer(pid, in);
  if (g.member_recording) {
    g.member_recording = false;
    member_done(status == 0);
  }
  if (status != 0 && g.tree_live) {
    remove_member_images();
    g.tree_live = 0;
  }
  if (status == 0) {
    g.written = true;
    g.taken++;
    if (adopt_now) adopt(g.out_path);
  }
  g_image_being_written.store(0, std::memory_order_release);
  sys::futex(&g_image_being_written, FUTEX_WAKE_PRIVATE, 1 << 30);
  if (!g.then_stop && shared) release_threads();
  if (g.then_stop) {
    // The image is complete (status 0), or the writer said why not: either way the process ends
    // here, as asked, without running on.
    for (;;) sys::exit_group(status == 0 ? 0 : 1);
  }
}

}  // namespace uffdlazy::ckpt
