#include "core/checkpoint/resume_source.h"

#include <fcntl.h>

#include "core/base/decimal.h"
#include "core/base/immortal.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy::ckpt {

namespace {

constinit Immortal<snap::SnapshotReader> g_reader;
constinit Immortal<snap::ProcessImage> g_image;
constinit Immortal<snap::SnapshotPageSource> g_source;
constinit bool g_serving = false;
constinit char g_path[1024] = {};

// Objects of an earlier generation: their memory came back with the image, their file mapping did
// not (it was left out), so only the anonymous parts are released.
void forget_previous() {
  if (g_source) g_source->release();
  g_serving = false;
}

}  // namespace

bool open_resume_source(int fd, bool verify_pages, LineWriter* why) {
  (void)verify_pages;
  forget_previous();
  char path[64] = "/proc/thread-self/fd/";
  format_u64(path + 21, uint64_t(fd));
  const long n = sys::call6(SYS_readlinkat, AT_FDCWD, reinterpret_cast<long>(path), reinterpret_cast<long>(g_path),
                            sizeof g_path - 1);
  g_path[n > 0 && g_path[0] == '/' ? n : 0] = 0;
  snap::SnapshotReader* reader = g_reader.construct();
  snap::ReadStatus st = reader->open(path);
  if (st.ok()) st = reader->open_ancestors(g_path[0] ? g_path : nullptr);
  if (!st.ok()) {
    snap::describe(st, *why);
    reader->close();
    return false;
  }
  st = g_image.construct()->open(*reader, /*check_object_data=*/false);
  if (!st.ok()) {
    snap::describe(st, *why);
    reader->close();
    return false;
  }
  return true;
}

const snap::SnapshotReader* resume_reader() { return g_reader.get(); }
const char* resume_image_path() { return g_path; }
const snap::ProcessImage* resume_image() { return g_image.get(); }

snap::SnapshotPageSource* start_resume_source(bool verify_pages) {
  snap::SnapshotPageSource* s = g_source.construct();
  if (s->init(g_reader.get(), verify_pages) < 0) return nullptr;
  g_serving = true;
  return s;
}

void close_resume_source() {
  if (g_reader) g_reader->close();
  g_serving = false;
}

const snap::SnapshotPageSource* resume_source() { return g_serving ? g_source.get() : nullptr; }

uint32_t resume_source_ranges(uint64_t* pairs, uint32_t max) {
  if (!g_serving || !g_reader || !g_reader->is_open()) return 0;
  return g_reader->mappings(pairs, max);
}

}  // namespace uffdlazy::ckpt
