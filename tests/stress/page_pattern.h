// What a page must hold. A page is either all zeros or filled with the pattern of one tag: a tag is
// never zero and names its writer (thread + 1 in the top bits, a counter below), so a page that
// shows up with another thread's or an older tag says whose data leaked. Every word of the page is
// written and checked, so torn or partly stale pages show too.
#pragma once

#include <cstddef>
#include <cstdint>

namespace stress {

inline constexpr uint64_t kTagCounterBits = 40;
inline constexpr uint64_t kHandlerTagBit = uint64_t(1) << 39;  // tags written by signal handlers

inline uint64_t make_tag(uint32_t thread, uint64_t counter) {
  return (uint64_t(thread + 1) << kTagCounterBits) | (counter & ((uint64_t(1) << kTagCounterBits) - 1));
}
inline long tag_thread(uint64_t tag) { return long(tag >> kTagCounterBits) - 1; }
inline uint64_t tag_counter(uint64_t tag) { return tag & ((uint64_t(1) << kTagCounterBits) - 1); }

inline uint64_t pattern_word(uint64_t tag, size_t i) { return i == 0 ? tag : tag ^ (uint64_t(i) * 0x9E3779B97F4A7C15ull); }

inline void fill_page(void* page, size_t page_size, uint64_t tag) {
  auto* w = static_cast<volatile uint64_t*>(page);
  for (size_t i = 0; i < page_size / 8; i++) w[i] = tag ? pattern_word(tag, i) : 0;
}

struct PageLook {
  bool ok;
  uint64_t word0;    // what the page starts with (a tag if it holds a pattern)
  size_t bad_word;   // first word that differs from what was expected
};

inline bool page_is_zero(const void* page, size_t page_size) {
  auto* w = static_cast<const volatile uint64_t*>(page);
  for (size_t i = 0; i < page_size / 8; i++)
    if (w[i]) return false;
  return true;
}

// `tag` 0 means zeros. `or_zero`: the page may also read as zeros (MADV_FREE, reclaimed or not).
inline PageLook check_page(const void* page, size_t page_size, uint64_t tag, bool or_zero) {
  auto* w = static_cast<const volatile uint64_t*>(page);
  PageLook look = {true, w[0], 0};
  if (tag == 0 || (or_zero && w[0] == 0)) {
    for (size_t i = 0; i < page_size / 8; i++) {
      if (w[i]) {
        look = {false, w[0], i};
        break;
      }
    }
    if (look.ok || tag == 0) return look;
    look = {true, w[0], 0};
  }
  for (size_t i = 0; i < page_size / 8; i++) {
    if (w[i] != pattern_word(tag, i)) return {false, w[0], i};
  }
  return look;
}

}  // namespace stress
