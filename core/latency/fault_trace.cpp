#include "core/latency/fault_trace.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>

#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

int FaultTrace::init(uint64_t capacity) {
  release();
  if (capacity == 0) return 0;
  if (capacity > (uint64_t(1) << 40) / sizeof(FaultRecord)) return -EINVAL;
  size_t bytes = size_t(capacity * sizeof(FaultRecord));
  // NORESERVE: a generous capacity must not count against overcommit for pages never touched.
  long r = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sys::failed(r)) return int(r);
  records_ = reinterpret_cast<FaultRecord*>(r);
  mapped_bytes_ = bytes;
  capacity_ = capacity;
  clear();
  return 0;
}

void FaultTrace::release() {
  if (records_) sys::munmap(records_, mapped_bytes_);
  records_ = nullptr;
  mapped_bytes_ = 0;
  capacity_ = 0;
  clear();
}

int write_all(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n) {
    long w = sys::write(fd, p, n);
    if (w == -EINTR) continue;
    if (w < 0) return int(w);
    if (w == 0) return -EIO;
    p += w;
    n -= size_t(w);
  }
  return 0;
}

int FaultTrace::write_file(const char* path, uint32_t pid, uint64_t start_ns, uint64_t page_size) const {
  TraceFileHeader h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, "UFFDTRC1", 8);
  h.version = TraceFileHeader::kVersion;
  h.header_size = sizeof(TraceFileHeader);
  h.record_size = sizeof(FaultRecord);
  h.pid = pid;
  h.count = count();
  h.dropped = dropped();
  h.capacity = capacity_;
  h.start_ns = start_ns;
  h.page_size = page_size;

  long fd = sys::openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return int(fd);
  int rc = write_all(int(fd), &h, sizeof h);
  if (rc == 0 && h.count) rc = write_all(int(fd), records_, size_t(h.count * sizeof(FaultRecord)));
  long c = sys::close(int(fd));
  if (rc == 0 && c < 0) rc = int(c);
  return rc;
}

}  // namespace uffdlazy
