#include "core/checkpoint/resume_source.h"

#include "core/base/decimal.h"
#include "core/base/immortal.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy::ckpt {

namespace {

constinit Immortal<snap::SnapshotReader> g_reader;
constinit Immortal<snap::ProcessImage> g_image;
constinit Immortal<snap::SnapshotPageSource> g_source;
constinit bool g_serving = false;

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
  snap::SnapshotReader* reader = g_reader.construct();
  snap::ReadStatus st = reader->open(path);
  if (!st.ok()) {
    snap::describe(st, *why);
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

bool resume_source_range(uint64_t* start, uint64_t* end) {
  if (!g_serving || !g_reader || !g_reader->is_open()) return false;
  *start = reinterpret_cast<uint64_t>(g_reader->base());
  const uint64_t ps = g_reader->page_size();
  *end = *start + (g_reader->file_size() + ps - 1) / ps * ps;
  return true;
}

}  // namespace uffdlazy::ckpt
