// SHA-256 (FIPS 180-4), for the snapshot's index digest (FORMAT.md). The shim writes snapshots from
// a child cloned off the program, where no library may be loaded, so libcrypto is not an option
// here; the CLI and the fetcher, which may use it, check this implementation against it (unit
// tests). No allocation, no system calls.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy::snap {

inline constexpr size_t kSha256Size = 32;

class Sha256 {
 public:
  Sha256() { reset(); }
  void reset();
  void update(const void* data, size_t len);
  // Writes the digest; the object must be reset() before it is used again.
  void finish(uint8_t out[kSha256Size]);

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  uint64_t total_ = 0;  // bytes fed so far
  size_t used_ = 0;     // bytes in buf_
};

// Lower-case hex of a digest into out (65 bytes: 64 digits and a NUL).
void sha256_hex(const uint8_t digest[kSha256Size], char out[2 * kSha256Size + 1]);

}  // namespace uffdlazy::snap
