// POSIX timers (timer_create): /proc/self/timers lists each with its id, signal, sigevent value,
// notification and clock; timer_gettime gives the time left and the interval. A resume creates
// each again with its id (PR_TIMER_CREATE_RESTORE_IDS) and the time it had left. glibc's
// SIGEV_THREAD timers notify a helper thread that blocks every signal (it cannot be stopped):
// they are refused before anything is stopped, with a line that says so.
#include <csignal>
#include <cstring>
#include <ctime>

#include "core/base/raw_syscall.h"
#include "core/checkpoint/object_capture.h"
#include "core/checkpoint/proc_file.h"

namespace uffdlazy::ckpt {

namespace {

constexpr int kGlibcTimerSignal = 32;  // SIGCANCEL, which glibc's SIGEV_THREAD helper waits for

constinit char g_text[65536];

struct Entry {
  int id = -1, signal = 0, notify = 0, clock = 0;
  uint32_t thread = 0;
  uint64_t value = 0;
};

// Calls visit(entry) for each timer; false if the file cannot be read.
template <class Visit>
bool for_each_timer(Visit&& visit) {
  const long n = read_small_file("/proc/self/timers", g_text, sizeof g_text);
  if (n < 0) return false;
  Entry e;
  const char* end = g_text + n;
  for (const char* p = g_text; p < end;) {
    const char* line_end = p;
    while (line_end < end && *line_end != '\n') line_end++;
    const size_t len = size_t(line_end - p);
    const char* v = p;
    if (starts_with(p, len, "ID:")) {
      if (e.id >= 0) visit(e);
      e = Entry{};
      v += 3;
      while (*v == ' ') v++;
      e.id = int(parse_number(&v, line_end));
    } else if (starts_with(p, len, "signal:")) {
      v += 7;
      while (*v == ' ') v++;
      e.signal = int(parse_number(&v, line_end));
      if (v < line_end && *v == '/') v++;
      e.value = parse_number(&v, line_end, 16);
    } else if (starts_with(p, len, "notify:")) {
      v += 7;
      while (*v == ' ') v++;
      // "signal|none|thread" "/" "pid|tid" "." number
      if (starts_with(v, size_t(line_end - v), "none")) e.notify = SIGEV_NONE;
      else if (starts_with(v, size_t(line_end - v), "thread")) e.notify = SIGEV_THREAD;
      else e.notify = SIGEV_SIGNAL;
      const char* slash = static_cast<const char*>(memchr(v, '/', size_t(line_end - v)));
      if (slash && starts_with(slash + 1, size_t(line_end - slash - 1), "tid.")) {
        e.notify |= 4;  // SIGEV_THREAD_ID
        const char* t = slash + 5;
        e.thread = uint32_t(parse_number(&t, line_end));
      }
    } else if (starts_with(p, len, "ClockID:")) {
      v += 8;
      while (*v == ' ') v++;
      e.clock = int(parse_number(&v, line_end));
    }
    p = line_end + 1;
  }
  if (e.id >= 0) visit(e);
  return true;
}

}  // namespace

bool refuse_thread_timers(LineWriter* why) {
  bool found = false;
  for_each_timer([&](const Entry& e) {
    if (!found && (e.notify & 4) && e.signal == kGlibcTimerSignal) {
      why->str("the process has a POSIX timer (id ").i64(e.id)
          .str(") that starts a thread (SIGEV_THREAD): glibc's helper thread for it cannot be stopped");
      found = true;
    }
  });
  return found;
}

bool capture_posix_timers(ObjectTable* objects, LineWriter* why) {
  bool ok = true;
  const bool read = for_each_timer([&](const Entry& e) {
    if (!ok) return;
    if ((e.notify & ~4) == SIGEV_THREAD) {
      why->str("the process has a POSIX timer (id ").i64(e.id).str(") of a kind a resume cannot make again");
      ok = false;
      return;
    }
    itimerspec left = {};
    if (sys::call6(SYS_timer_gettime, e.id, long(&left)) < 0) {
      why->str("the process has a POSIX timer (id ").i64(e.id).str(") that cannot be read");
      ok = false;
      return;
    }
    snap::ObjectRecord* o = objects->add(snap::ObjectKind::kPosixTimer, uint64_t(e.id));
    if (!o) {
      why->str("too many objects");
      ok = false;
      return;
    }
    snap::PosixTimerState& t = o->timer;
    t.id = e.id;
    t.clock = e.clock;
    t.notify = e.notify;
    t.signal = e.signal;
    t.sigev_value = e.value;
    t.thread = e.thread;
    t.value_sec = left.it_value.tv_sec;
    t.value_nsec = left.it_value.tv_nsec;
    t.interval_sec = left.it_interval.tv_sec;
    t.interval_nsec = left.it_interval.tv_nsec;
  });
  if (!read) {
    why->str("cannot read /proc/self/timers");
    return false;
  }
  return ok;
}

}  // namespace uffdlazy::ckpt
