// The order of a resume. Everything that can refuse comes before the point of no return (leaving
// the restorer's own address space); after it, a failure ends the process with a message.
#include <linux/futex.h>
#include <sys/mman.h>

#include <csignal>
#include <sys/resource.h>

#include "tools/restorer/restorer.h"

namespace restorer {

Options g_options;

namespace {

void copy(char* dst, size_t cap, const char* src) {
  size_t n = 0;
  for (; src[n] && n + 1 < cap; n++) dst[n] = src[n];
  dst[n] = 0;
}

uint64_t number(const char* s) {
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) v = v * 10 + uint64_t(*s - '0');
  return v;
}

bool starts(const char* s, const char* prefix, const char** value) {
  const size_t n = length(prefix);
  if (memcmp(s, prefix, n)) return false;
  *value = s + n;
  return true;
}

// children=OLD:NEW,OLD:NEW,...: the zombie children made again (the pids the program knows them
// by, and the pids they have now).
void parse_children(const char* v) {
  while (*v && g_options.child_count < ckpt::kMaxChildPids) {
    ckpt::ChildPid& c = g_options.children[g_options.child_count++];
    c.old_pid = int32_t(number(v));
    while (*v && *v != ':') v++;
    if (*v) v++;
    c.new_pid = int32_t(number(v));
    while (*v && *v != ',') v++;
    if (*v) v++;
  }
}

// uffdlazy-restorer fd=N launch=NS [lazy=0|1] [strict=1] [stats=1] [verify=0] [trace=1] [incremental=1]
//                   [prefetch=0|1|2] [readahead=PAGES] [report=PATH] [checkpoint=PATH]
//                   [children=OLD:NEW,...] [barrier=FD] image=PATH
void parse(long* sp) {
  const long argc = sp[0];
  char** argv = reinterpret_cast<char**>(sp + 1);
  for (long i = 1; i < argc; i++) {
    const char* v;
    if (starts(argv[i], "fd=", &v)) g_options.image_fd = int(number(v));
    else if (starts(argv[i], "launch=", &v)) g_options.launch_ns = number(v);
    else if (starts(argv[i], "lazy=", &v)) g_options.lazy = *v == '1';
    else if (starts(argv[i], "strict=", &v)) g_options.strict = *v == '1';
    else if (starts(argv[i], "stats=", &v)) g_options.stats = *v == '1';
    else if (starts(argv[i], "verify=", &v)) g_options.verify = *v == '1';
    else if (starts(argv[i], "trace=", &v)) g_options.trace = *v == '1';
    else if (starts(argv[i], "incremental=", &v)) g_options.incremental = *v == '1';
    else if (starts(argv[i], "prefetch=", &v)) g_options.prefetch = uint32_t(number(v)) & ckpt::kResumePrefetchMask;
    else if (starts(argv[i], "readahead=", &v)) g_options.readahead = uint32_t(number(v));
    else if (starts(argv[i], "report=", &v)) copy(g_options.report, sizeof g_options.report, v);
    else if (starts(argv[i], "image=", &v)) copy(g_options.image, sizeof g_options.image, v);
    else if (starts(argv[i], "checkpoint=", &v)) copy(g_options.checkpoint, sizeof g_options.checkpoint, v);
    else if (starts(argv[i], "children=", &v)) parse_children(v);
    else if (starts(argv[i], "barrier=", &v)) g_options.barrier_fd = int(number(v));
  }
  if (g_options.image_fd < 0) {
    Line l;
    l.s("uffdlazy-restorer: started without an image; use uffdlazy resume");
    die(kRefused, l);
  }
  if (!g_options.launch_ns) g_options.launch_ns = now_ns();
  if (g_options.readahead < 1 || g_options.readahead > 4096) g_options.readahead = 1024;
}

ckpt::ResumeBarrier* g_barrier = nullptr;

}  // namespace

void open_resume_barrier() {
  if (g_options.barrier_fd < 0) return;
  const long m = sys::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, g_options.barrier_fd, 0);
  sys::close(g_options.barrier_fd);  // never the program's
  g_options.barrier_fd = -1;
  if (m < 0 && m > -4096) {
    Line l;
    resume_line(l).s("cannot map the process tree's resume barrier: ").err(m);
    die(kRefused, l);
  }
  g_barrier = reinterpret_cast<ckpt::ResumeBarrier*>(m);
}

void refuse_resume_barrier() {
  if (!g_barrier) return;
  __atomic_store_n(&g_barrier->failed, 1, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&g_barrier->arrived, 1, __ATOMIC_SEQ_CST);  // a change the waiters see
  sys::futex(&g_barrier->arrived, FUTEX_WAKE, 1 << 30);
}

void pass_resume_barrier() {
  if (!g_barrier) return;
  int32_t seen = __atomic_add_fetch(&g_barrier->arrived, 1, __ATOMIC_SEQ_CST);
  sys::futex(&g_barrier->arrived, FUTEX_WAKE, 1 << 30);
  const uint64_t deadline = now_ns() + ckpt::kResumeBarrierTimeoutNs;
  for (;;) {
    if (__atomic_load_n(&g_barrier->failed, __ATOMIC_SEQ_CST)) {
      // Another process of the tree refused and said why: this one ends too, before the program
      // runs a single instruction.
      g_barrier = nullptr;
      for (;;) sys::exit_group(kRefused);
    }
    if (seen >= __atomic_load_n(&g_barrier->expected, __ATOMIC_SEQ_CST)) break;
    const uint64_t now = now_ns();
    if (now >= deadline) {
      Line l;
      resume_line(l).s("a process of the tree did not reach its resume within ")
          .u(ckpt::kResumeBarrierTimeoutNs / 1000000000ull).s(" s; none of the tree is resumed");
      die(kRefused, l);
    }
    const uint64_t left = deadline - now;
    const timespec wait = {long(left / 1000000000ull), long(left % 1000000000ull)};
    sys::futex(&g_barrier->arrived, FUTEX_WAIT, seen, &wait);
    seen = __atomic_load_n(&g_barrier->arrived, __ATOMIC_SEQ_CST);
  }
  sys::munmap(g_barrier, 4096);
  g_barrier = nullptr;
}

}  // namespace restorer

extern "C" [[noreturn]] void restorer_main(long* sp) {
  using namespace restorer;
  uint64_t all = ~0ull;
  sys::sigprocmask(SIG_SETMASK, &all, nullptr);
  parse(sp);
  open_resume_barrier();
  trace("started");
  map_image();
  check_compatible();
  check_files();
  restore_process_settings();
  int uffd = open_userfaultfd();
  if (uffd < 0 && g_options.lazy) {
    Line l;
    l.s("uffdlazy: resume ").s(g_options.image).s(": no userfaultfd that handles kernel faults (").err(uffd).s(")");
    if (g_options.strict) {
      l.s(", and --strict was given");
      die(kNoUffd, l);
    }
    l.s("; resuming eagerly");
    l.emit();
    g_options.lazy = false;
  }
  if (g_options.lazy && !room_for_lazy_resume()) {
    Line l;
    l.s("uffdlazy: resume ").s(g_options.image)
        .s(": the process's address-space limit (RLIMIT_AS, ").u(g_image.process->rlimits[RLIMIT_AS].cur)
        .s(" bytes) leaves no room to map the image (").u(g_image.size).s(" bytes) and serve it lazily");
    if (g_options.strict) {
      l.s(", and --strict was given");
      die(kRefused, l);
    }
    l.s("; resuming eagerly");
    l.emit();
    g_options.lazy = false;
  }
  trace("checked");
  int staging = -1;
  const int image_fd = prepare_descriptors(uffd, &staging);
  // Objects can still be refused: nothing of the process runs yet.
  create_objects(staging);
  trace("objects made");
  // The whole tree has come this far, or none of it goes on.
  pass_resume_barrier();
  trace("tree ready");
  // The point of no return.
  leave_own_address_space();
  map_everything();
  release_shared_memory();
  trace("mapped");
  fill_eager_pages(g_options.lazy);
  trace("eager pages in place");
  protect_everything();
  trace("protected");
  restore_mm();
  restore_process_state();
  restore_late_settings();
  trace("process state");
  start_threads(image_fd, uffd >= 0 ? g_image.process->uffd_fd : -1);
  trace("threads started");
  place_descriptors();
  restore_leases();
  release_and_become_leader();
}
