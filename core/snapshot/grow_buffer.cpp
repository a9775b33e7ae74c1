#include "core/snapshot/grow_buffer.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>

#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy::snap {

void* GrowBuffer::reserve(size_t n) {
  if (size_ + n <= capacity_) return data_ + size_;
  size_t want = capacity_ ? capacity_ : 64 * 1024;
  while (want < size_ + n) want *= 2;
  long r;
  if (data_) {
    r = sys::mremap(data_, capacity_, want, MREMAP_MAYMOVE, nullptr);
  } else {
    r = mmap_aside(want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  if (sys::failed(r)) return nullptr;
  data_ = reinterpret_cast<uint8_t*>(r);
  capacity_ = want;
  return data_ + size_;
}

int GrowBuffer::append(const void* src, size_t n) {
  if (n == 0) return 0;
  void* dst = reserve(n);
  if (!dst) return -ENOMEM;
  memcpy(dst, src, n);
  size_ += n;
  return 0;
}

void GrowBuffer::release() {
  if (data_) sys::munmap(data_, capacity_);
  data_ = nullptr;
  size_ = capacity_ = 0;
}

}  // namespace uffdlazy::snap
