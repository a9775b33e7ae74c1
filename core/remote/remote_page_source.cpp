#include "core/remote/remote_page_source.h"

#include <cerrno>
#include <csignal>
#include <linux/futex.h>
#include <poll.h>

#include "core/base/line_writer.h"
#include "core/base/program_stderr.h"
#include "core/base/raw_syscall.h"
#include "core/snapshot/format.h"

namespace uffdlazy::remote {

namespace {
constexpr uint32_t kWaitAhead = 256;  // pages asked for by a thread that waits for one
}  // namespace

void RemotePageSource::init(snap::SnapshotPageSource* inner, void* control, int bell, const char* location) {
  inner_ = inner;
  reader_ = inner->reader();
  ch_.attach(control);
  bell_ = bell;
  location_ = location;
  data_offset_ = ch_.header()->data_offset;
  block_size_ = ch_.header()->block_size;
}

uint64_t RemotePageSource::block_of(int32_t source, uint64_t page) const {
  const snap::PageEntry e = reader_->entry(uint64_t(source), page);
  const snap::PageKind k = snap::entry_kind(e);
  if ((k != snap::PageKind::kData && k != snap::PageKind::kDuplicate) || snap::entry_depth(e) != 0) return UINT64_MAX;
  const uint64_t off = snap::entry_offset(e);
  if (off < data_offset_) return UINT64_MAX;
  return (off - data_offset_) / block_size_;
}

uffdlazy::PageLocation RemotePageSource::locate(int32_t source, uint64_t page) {
  uffdlazy::PageLocation loc = inner_->locate(source, page);
  if (loc.owed && loc.kind != uffdlazy::PageKind::kZero) {
    const uint64_t b = block_of(source, page);
    if (b != UINT64_MAX && !ch_.landed(b)) loc.pending = true;
  }
  return loc;
}

void RemotePageSource::want(int32_t source, uint64_t page, uint32_t count) {
  if (ch_.state() != kReady) return;
  const uint64_t pages = reader_->region(uint64_t(source)).page_count;
  uint64_t run_first = 0, run_n = 0;
  bool posted = false;
  auto flush = [&] {
    if (!run_n) return;
    if (ch_.post(run_first, run_n)) {
      for (uint64_t i = 0; i < run_n; i++) ch_.set_requested(run_first + i);
      posted = true;
    }
    run_n = 0;
  };
  for (uint64_t p = page; p < page + count && p < pages; p++) {
    if (!inner_->owed(source, p)) continue;
    const uint64_t b = block_of(source, p);
    if (b == UINT64_MAX || ch_.landed(b) || ch_.requested(b)) continue;
    if (run_n && b == run_first + run_n) {
      run_n++;
      continue;
    }
    flush();
    run_first = b;
    run_n = 1;
  }
  flush();
  if (posted) {
    __atomic_fetch_add(&ch_.header()->ring_futex, 1, __ATOMIC_RELEASE);
    sys::futex(&ch_.header()->ring_futex, FUTEX_WAKE, 1);
  }
}

bool RemotePageSource::on_doorbell() {
  uint64_t v = 0;
  const long n = sys::read(bell_, &v, sizeof v);
  if (ch_.state() == kBroken && inner_->owed_pages() > 0) stop_process();
  return n == long(sizeof v);
}

bool RemotePageSource::wait(int32_t source, uint64_t page, bool ask) {
  const uint64_t b = block_of(source, page);
  if (b == UINT64_MAX) return true;
  while (!ch_.landed(b)) {
    if (ch_.state() == kBroken) stop_process();
    // Whoever waits (a fork's fill, memory the program claims) goes on to the pages after this
    // one: ask for them in one request rather than one round trip each.
    if (ask && !ch_.requested(b)) want(source, page, kWaitAhead);
    if (!ask) {
      // Not the monitor: its doorbell is not ours to read.
      const timespec ts = {0, 10 * 1000 * 1000};
      sys::call6(SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
      continue;
    }
    pollfd p = {bell_, POLLIN, 0};
    const timespec ts = {0, 100 * 1000 * 1000};
    sys::call6(SYS_ppoll, reinterpret_cast<long>(&p), 1, reinterpret_cast<long>(&ts), 0, 8);
    uint64_t v;
    sys::read(bell_, &v, sizeof v);
  }
  return true;
}

uffdlazy::PageContent RemotePageSource::peek(int32_t source, uint64_t page) {
  if (inner_->owed(source, page)) wait_landed(source, page);
  return inner_->peek(source, page);
}

void RemotePageSource::stop_process() {
  LineWriter w;
  w.str("uffdlazy: ").str(location_).str(": ").str(ch_.header()->message).str("; ").u64(inner_->owed_pages());
  w.str(" pages still owed from the snapshot would read as zeros, so the process is stopped");
  emit_to_program_stderr(w);
  for (;;) sys::kill(sys::getpid(), SIGKILL);
}

}  // namespace uffdlazy::remote
