#include "core/pager/seen_share.h"

#include <cstring>

#include "core/base/aside_mmap.h"
#include "core/base/proc_maps.h"
#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

namespace {

struct SmapsWalk {
  SeenShare share;
  bool own = false;        // the current mapping is the shim's
  bool registered = false;
  uint64_t anonymous_kb = 0;
  bool in_entry = false;
};

char g_smaps_buf[16 * 1024];

bool is_own(uintptr_t s, uintptr_t e) {
  if (overlaps_aside(s, e)) return true;
  for (size_t i = 0; i < g.own_count; i++) {
    if (g.own[i].start < e && s < g.own[i].end) return true;
  }
  return false;
}

void finish_entry(SmapsWalk& w) {
  if (!w.in_entry || w.own) return;
  w.share.anonymous_kb += w.anonymous_kb;
  if (w.registered) w.share.registered_kb += w.anonymous_kb;
}

uint64_t kb_value(const char* p, const char* end) {
  while (p < end && (*p < '0' || *p > '9')) p++;
  uint64_t v = 0;
  for (; p < end && *p >= '0' && *p <= '9'; p++) v = v * 10 + uint64_t(*p - '0');
  return v;
}

bool has_flag(const char* p, const char* end, const char* flag) {
  // " um" as a whole word among the two-letter flags.
  for (; p + 2 <= end; p++) {
    if (p[0] == flag[0] && p[1] == flag[1] && p[-1] == ' ' && (p + 2 == end || p[2] == ' ')) return true;
  }
  return false;
}

void on_line(const char* line, size_t n, void* ctx) {
  SmapsWalk& w = *static_cast<SmapsWalk*>(ctx);
  const char* end = line + n;
  MapsEntry m;
  if (parse_maps_line(line, n, &m)) {
    finish_entry(w);
    w.in_entry = true;
    w.own = is_own(m.start, m.end);
    w.registered = false;
    w.anonymous_kb = 0;
    return;
  }
  if (n > 10 && !memcmp(line, "Anonymous:", 10)) {
    w.anonymous_kb = kb_value(line + 10, end);
  } else if (n > 8 && !memcmp(line, "VmFlags:", 8)) {
    w.registered = has_flag(line + 8, end, "um");
  }
}

}  // namespace

SeenShare measure_seen_share() {
  SmapsWalk w;
  // thread-self: /proc/self describes the main thread, whose memory view is empty once it has left
  // (pthread_exit, the exit system call) while other threads still run.
  if (for_each_line("/proc/thread-self/smaps", g_smaps_buf, sizeof g_smaps_buf, on_line, &w) < 0) return w.share;
  finish_entry(w);
  w.share.valid = true;
  return w.share;
}

}  // namespace uffdlazy::pager
