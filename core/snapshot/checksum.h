// The one checksum the snapshot format uses: XXH3-64 with the default seed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy::snap {

uint64_t checksum(const void* data, size_t len);

// The checksum of [data, data + len) as if bytes [hole, hole + 8) were zero: how a header that
// stores its own checksum is hashed.
uint64_t checksum_with_zeroed_u64(const void* data, size_t len, size_t hole);

}  // namespace uffdlazy::snap
