#include "core/snapshot/checksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace uffdlazy::snap {

uint64_t checksum(const void* data, size_t len) { return XXH3_64bits(data, len); }

uint64_t checksum_with_zeroed_u64(const void* data, size_t len, size_t hole) {
  // The streaming state lives on the stack: XXH3_createState would call malloc.
  XXH3_state_t state;
  XXH3_INITSTATE(&state);
  XXH3_64bits_reset(&state);
  const char* p = static_cast<const char*>(data);
  const uint64_t zero = 0;
  if (hole + sizeof zero > len) return XXH3_64bits(data, len);
  XXH3_64bits_update(&state, p, hole);
  XXH3_64bits_update(&state, &zero, sizeof zero);
  XXH3_64bits_update(&state, p + hole + sizeof zero, len - hole - sizeof zero);
  return XXH3_64bits_digest(&state);
}

}  // namespace uffdlazy::snap
