// Rounding to powers of two (page sizes, alignments): one definition for the whole project.
#pragma once

#include <cstdint>

namespace uffdlazy {

// v rounded up / down to a multiple of a, where a is a power of two.
constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
constexpr uint64_t align_down(uint64_t v, uint64_t a) { return v & ~(a - 1); }

}  // namespace uffdlazy
