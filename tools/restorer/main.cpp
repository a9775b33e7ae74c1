// The order of a resume. Everything that can refuse comes before the point of no return (leaving
// the restorer's own address space); after it, a failure ends the process with a message.
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
//                   [children=OLD:NEW,...] image=PATH
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
  }
  if (g_options.image_fd < 0) {
    Line l;
    l.s("uffdlazy-restorer: started without an image; use uffdlazy resume");
    die(kRefused, l);
  }
  if (!g_options.launch_ns) g_options.launch_ns = now_ns();
  if (g_options.readahead < 1 || g_options.readahead > 4096) g_options.readahead = 1024;
}

}  // namespace

}  // namespace restorer

extern "C" [[noreturn]] void restorer_main(long* sp) {
  using namespace restorer;
  uint64_t all = ~0ull;
  sys::sigprocmask(SIG_SETMASK, &all, nullptr);
  parse(sp);
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
