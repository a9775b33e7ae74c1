// A byte buffer in its own anonymous mapping that grows with mremap: the writer's page index and
// region table live here, so they never touch the target's heap and cost nothing until used.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy::snap {

class GrowBuffer {
 public:
  GrowBuffer() = default;
  ~GrowBuffer() { release(); }
  GrowBuffer(const GrowBuffer&) = delete;
  GrowBuffer& operator=(const GrowBuffer&) = delete;

  // Appends n bytes; returns 0 or -ENOMEM.
  int append(const void* src, size_t n);
  // Makes room for n more bytes and returns where they go (nullptr on failure); the caller
  // fills them and calls commit(n).
  void* reserve(size_t n);
  void commit(size_t n) { size_ += n; }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  void clear() { size_ = 0; }
  void release();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace uffdlazy::snap
