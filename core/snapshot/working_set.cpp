#include "core/snapshot/working_set.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/base/aside_mmap.h"
#include "core/base/decimal.h"
#include "core/base/raw_syscall.h"
#include "core/snapshot/checksum.h"

namespace uffdlazy::snap {

namespace {

constexpr size_t kHeaderSize = sizeof(WorkingSetHeader);
constexpr size_t kOffsetOfChecksum = offsetof(WorkingSetHeader, checksum);

WsStatus fail(WsError e, int err = 0, uint64_t a = 0, uint64_t b = 0, const char* what = nullptr) {
  return WsStatus{e, err, a, b, what};
}

bool write_all(int fd, const uint8_t* p, uint64_t n, int* err) {
  while (n) {
    long w = sys::write(fd, p, n > (1u << 30) ? (1u << 30) : n);
    if (w == -EINTR) continue;
    if (w <= 0) {
      *err = w < 0 ? int(-w) : EIO;
      return false;
    }
    p += w;
    n -= uint64_t(w);
  }
  return true;
}

}  // namespace

void describe(const WsStatus& s, const char* snapshot_path, LineWriter& out) {
  switch (s.error) {
    case WsError::kOk: out.str("ok"); return;
    case WsError::kOpenFailed: out.str("cannot open the working set: ").errno_text(s.err); return;
    case WsError::kNotRegularFile: out.str("the working set is not a regular file"); return;
    case WsError::kTruncated:
      out.str("truncated working set: the file has ").u64(s.a).str(" bytes but needs ").u64(s.b);
      return;
    case WsError::kBadMagic: out.str("not a uffdlazy working-set file (bad magic)"); return;
    case WsError::kUnsupportedVersion:
      out.str("unsupported working-set format version ").u64(s.a).ch('.').u64(s.b).str(" (this build reads ")
          .u64(kWsVersionMajor).str(".x)");
      return;
    case WsError::kChecksum: out.str("working-set checksum mismatch (the file is damaged)"); return;
    case WsError::kForeign:
      out.str("this working set was recorded from another snapshot, not ").str(snapshot_path ? snapshot_path : "this one")
          .str(" (record it again with --ws-record while restoring that snapshot)");
      return;
    case WsError::kMalformed: out.str("malformed working set: ").str(s.what ? s.what : "?"); return;
    case WsError::kNoMemory: out.str("cannot map memory for the working set"); return;
    case WsError::kWrite: out.str("cannot write the working set: ").errno_text(s.err); return;
  }
}

// ---- reader ----

void WorkingSetReader::close() {
  if (base_) sys::munmap(const_cast<uint8_t*>(base_), size_);
  base_ = nullptr;
  size_ = 0;
  runs_ = nullptr;
  run_count_ = page_count_ = flags_ = 0;
}

WsStatus WorkingSetReader::open(const char* path, const SnapshotReader& snapshot) {
  close();
  long fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(WsError::kOpenFailed, int(-fd));
  struct stat st;
  long r = sys::fstat(int(fd), &st);
  if (r < 0 || !S_ISREG(st.st_mode)) {
    sys::close(int(fd));
    return r < 0 ? fail(WsError::kOpenFailed, int(-r)) : fail(WsError::kNotRegularFile);
  }
  const uint64_t size = uint64_t(st.st_size);
  if (size == 0) {
    sys::close(int(fd));
    return fail(WsError::kTruncated, 0, 0, kHeaderSize);
  }
  // A private copy, not a file mapping: the file may be replaced while the program runs, and the
  // monitor must never read a page that could change or vanish under it.
  long m = mmap_aside(size_t(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sys::failed(m)) {
    sys::close(int(fd));
    return fail(WsError::kNoMemory);
  }
  uint8_t* buf = reinterpret_cast<uint8_t*>(m);
  uint64_t got = 0;
  while (got < size) {
    long n = sys::pread(int(fd), buf + got, size - got, long(got));
    if (n == -EINTR) continue;
    if (n <= 0) break;
    got += uint64_t(n);
  }
  sys::close(int(fd));
  base_ = buf;
  size_ = size;
  if (got != size) {
    close();
    return fail(WsError::kTruncated, 0, got, size);
  }
  if (size < sizeof kWsMagic || memcmp(buf, kWsMagic, sizeof kWsMagic)) {
    close();
    return fail(WsError::kBadMagic);
  }
  if (size < kHeaderSize) {
    close();
    return fail(WsError::kTruncated, 0, size, kHeaderSize);
  }
  WorkingSetHeader h;
  memcpy(&h, buf, kHeaderSize);
  WsStatus s;
  if (h.version_major != kWsVersionMajor) {
    s = fail(WsError::kUnsupportedVersion, 0, h.version_major, h.version_minor);
  } else if (h.file_size > size) {
    s = fail(WsError::kTruncated, 0, size, h.file_size);
  } else if (h.header_size < kHeaderSize || h.header_size > h.file_size || h.run_size < sizeof(SourceRun)) {
    s = fail(WsError::kMalformed, 0, 0, 0, "header sizes");
  } else if (checksum_with_zeroed_u64(buf, h.file_size, kOffsetOfChecksum) != h.checksum) {
    s = fail(WsError::kChecksum);
  } else if (h.snapshot_header_checksum != snapshot.header().header_checksum ||
             h.snapshot_file_size != snapshot.header().file_size ||
             h.snapshot_created_ns != snapshot.header().created_ns) {
    s = fail(WsError::kForeign);
  } else if (h.page_size != snapshot.page_size()) {
    s = fail(WsError::kMalformed, 0, 0, 0, "page size differs from the snapshot's");
  } else if (h.run_count > (h.file_size - h.header_size) / h.run_size ||
             h.header_size + h.run_count * h.run_size != h.file_size) {
    s = fail(WsError::kMalformed, 0, 0, 0, "run count disagrees with the file size");
  } else if (h.run_size != sizeof(SourceRun) || h.header_size % 8) {
    // 1.x may append fields to runs; this reader needs them packed as it reads them.
    s = fail(WsError::kMalformed, 0, 0, 0, "run records of an unknown size");
  }
  if (!s.ok()) {
    close();
    return s;
  }
  const SourceRun* runs = reinterpret_cast<const SourceRun*>(buf + h.header_size);
  uint64_t pages = 0;
  for (uint64_t i = 0; i < h.run_count; i++) {
    const SourceRun& run = runs[i];
    if (run.source >= snapshot.region_count() || run.pages == 0 ||
        run.first_page > snapshot.region(run.source).page_count ||
        run.pages > snapshot.region(run.source).page_count - run.first_page) {
      close();
      return fail(WsError::kMalformed, 0, 0, 0, "a run lies outside the snapshot's regions");
    }
    pages += run.pages;
  }
  if (pages != h.page_count) {
    close();
    return fail(WsError::kMalformed, 0, 0, 0, "page count disagrees with the runs");
  }
  runs_ = runs;
  run_count_ = h.run_count;
  page_count_ = pages;
  flags_ = h.flags;
  return WsStatus{};
}

// ---- log and writer ----

bool WorkingSetLog::init(uint64_t max_pages, uint32_t page_size) {
  if (max_pages == 0) max_pages = 1;
  const uint64_t bytes = kHeaderSize + max_pages * sizeof(SourceRun);
  const uint64_t size = (bytes + page_size - 1) / page_size * page_size;
  // Untouched pages of the mapping cost nothing: only what the run touches is ever written.
  long m = mmap_aside(size_t(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sys::failed(m)) return false;
  mem_ = reinterpret_cast<uint8_t*>(m);
  mem_size_ = size_t(size);
  runs_ = reinterpret_cast<SourceRun*>(mem_ + kHeaderSize);
  capacity_ = max_pages;
  count_ = pages_ = 0;
  truncated_ = false;
  frozen_ = false;
  page_size_ = page_size;
  return true;
}

void WorkingSetLog::touched(int32_t source, uint64_t page) {
  if (!runs_ || source < 0 || __atomic_load_n(&frozen_, __ATOMIC_ACQUIRE)) return;
  const uint64_t n = count_;
  if (n) {
    SourceRun& last = runs_[n - 1];
    if (last.source == uint32_t(source) && page == last.first_page + last.pages && last.pages < UINT32_MAX) {
      __atomic_store_n(&last.pages, last.pages + 1, __ATOMIC_RELEASE);
      __atomic_store_n(&pages_, pages_ + 1, __ATOMIC_RELAXED);
      return;
    }
  }
  if (n == capacity_) {
    truncated_ = true;
    return;
  }
  runs_[n] = SourceRun{uint32_t(source), 1, page};
  __atomic_store_n(&pages_, pages_ + 1, __ATOMIC_RELAXED);
  __atomic_store_n(&count_, n + 1, __ATOMIC_RELEASE);
}

WsStatus WorkingSetLog::write(const char* path, const SnapshotReader& snapshot) {
  if (!mem_) return fail(WsError::kNoMemory);
  const uint64_t runs = run_count();
  uint64_t pages = 0;
  for (uint64_t i = 0; i < runs; i++) pages += __atomic_load_n(&runs_[i].pages, __ATOMIC_ACQUIRE);
  WorkingSetHeader h = {};
  memcpy(h.magic, kWsMagic, sizeof kWsMagic);
  h.version_major = kWsVersionMajor;
  h.version_minor = kWsVersionMinor;
  h.header_size = uint32_t(kHeaderSize);
  h.file_size = kHeaderSize + runs * sizeof(SourceRun);
  h.page_size = page_size_;
  h.run_size = sizeof(SourceRun);
  h.run_count = runs;
  h.page_count = pages;
  h.snapshot_header_checksum = snapshot.header().header_checksum;
  h.snapshot_file_size = snapshot.header().file_size;
  h.snapshot_created_ns = snapshot.header().created_ns;
  h.flags = truncated_ ? kWsFlagTruncated : 0;
  memcpy(mem_, &h, kHeaderSize);
  const uint64_t sum = checksum_with_zeroed_u64(mem_, h.file_size, kOffsetOfChecksum);
  memcpy(mem_ + kOffsetOfChecksum, &sum, sizeof sum);

  // <path>.tmp.<pid>, fsync, rename: a crash leaves the old file or the new one, never half.
  char tmp[1100];
  const size_t n = strlen(path);
  if (n + 32 > sizeof tmp) return fail(WsError::kWrite, ENAMETOOLONG);
  memcpy(tmp, path, n);
  memcpy(tmp + n, ".tmp.", 5);
  tmp[n + 5 + format_u64(tmp + n + 5, uint64_t(sys::getpid()))] = 0;
  long fd = sys::openat(AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(WsError::kWrite, int(-fd));
  int err = 0;
  bool ok = write_all(int(fd), mem_, h.file_size, &err);
  if (ok) {
    long r = sys::fsync(int(fd));
    if (r < 0) {
      ok = false;
      err = int(-r);
    }
  }
  sys::close(int(fd));
  if (ok) {
    long r = sys::renameat(AT_FDCWD, tmp, AT_FDCWD, path);
    if (r < 0) {
      ok = false;
      err = int(-r);
    }
  }
  if (!ok) {
    sys::unlinkat(AT_FDCWD, tmp, 0);
    return fail(WsError::kWrite, err);
  }
  return WsStatus{};
}

}  // namespace uffdlazy::snap
