// The control block shared by a remote restore's monitor (in the program) and its fetcher
// (uffdlazy-fetch, a process of its own): docs/remote.md, "How a remote restore runs".
//
// One memfd, mapped MAP_SHARED by both:
//   page 0            ChannelHeader: state, the object's geometry, the failure line, counters
//   kRingOffset       the request ring: single producer (the monitor), single consumer (the
//                     fetcher), fixed size, no lock. The monitor bumps ring_futex after posting
//                     and wakes it (a shared futex); the fetcher waits on it.
//   landed_offset()   the landed bitmap: one bit per block of the data area, set (release) by the
//                     fetcher after the block's bytes are in the view; read (acquire) by the monitor.
//   requested_offset() one bit per block: asked for already (written by the monitor only).
// The fetcher writes the monitor's eventfd (the doorbell) after blocks land or on failure.
//
// No allocation, no libc beyond raw system calls: both sides use it, the monitor included.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy::remote {

inline constexpr uint64_t kChannelMagic = 0x6c6e6e6168636675ull;  // "ufchannl"
inline constexpr uint32_t kChannelVersion = 1;
inline constexpr uint64_t kRingOffset = 4096;
inline constexpr uint64_t kRingEntries = 4096;

enum ChannelState : uint32_t {
  kOpening = 0,  // the fetcher is opening the object
  kReady = 1,    // header and metadata are in the view; pages may be asked for
  kRefused = 2,  // the object cannot be used (before the program runs): message says why
  kBroken = 3,   // fetching failed while the program runs: message says why
};

struct RingEntry {
  uint64_t first_block;  // block number in the data area
  uint64_t blocks;
};

struct ChannelHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t state;        // ChannelState (atomic)
  uint64_t object_size;  // bytes of the object (the view's size)
  uint64_t data_offset;  // the data area in the object
  uint64_t data_length;
  uint64_t block_size;   // the snapshot's page size
  uint64_t blocks;       // data_length / block_size
  uint64_t control_size; // bytes of the whole control block
  uint64_t ring_head;    // next entry the monitor writes (atomic)
  uint64_t ring_tail;    // next entry the fetcher reads (atomic)
  uint32_t ring_futex;   // bumped after each post (atomic; a shared futex)
  uint32_t fetcher_pid;
  // The fetcher's account (atomic, relaxed).
  uint64_t requests;       // ranged GETs sent (retries not counted)
  uint64_t bytes_fetched;  // bytes that came over the network
  uint64_t blocks_fetched; // data blocks that came over the network
  uint64_t blocks_cached;  // data blocks that came from the host cache
  uint64_t ready_ns;       // CLOCK_MONOTONIC when the object was open
  char message[1024];      // the failure line (kRefused, kBroken), NUL-terminated
};
static_assert(sizeof(ChannelHeader) <= kRingOffset);

// The layout for an object whose data area has `blocks` blocks.
inline uint64_t landed_offset() { return kRingOffset + kRingEntries * sizeof(RingEntry); }
inline uint64_t bitmap_bytes(uint64_t blocks) { return (blocks + 63) / 64 * 8; }
inline uint64_t requested_offset(uint64_t blocks) { return landed_offset() + bitmap_bytes(blocks); }
inline uint64_t control_size_for(uint64_t blocks) {
  return (requested_offset(blocks) + bitmap_bytes(blocks) + 4095) / 4096 * 4096;
}

// A view of a mapped control block.
class Channel {
 public:
  void attach(void* base) {
    h_ = static_cast<ChannelHeader*>(base);
    ring_ = reinterpret_cast<RingEntry*>(static_cast<char*>(base) + kRingOffset);
    landed_ = reinterpret_cast<uint64_t*>(static_cast<char*>(base) + landed_offset());
    requested_ = reinterpret_cast<uint64_t*>(static_cast<char*>(base) + requested_offset(h_->blocks));
  }
  bool attached() const { return h_ != nullptr; }
  ChannelHeader* header() const { return h_; }
  uint64_t blocks() const { return h_->blocks; }
  uint32_t state() const { return __atomic_load_n(&h_->state, __ATOMIC_ACQUIRE); }
  void set_state(uint32_t s) { __atomic_store_n(&h_->state, s, __ATOMIC_RELEASE); }

  bool landed(uint64_t block) const {
    return block >= h_->blocks || (__atomic_load_n(&landed_[block / 64], __ATOMIC_ACQUIRE) >> (block % 64) & 1);
  }
  // Blocks [first, first + n) are in the view (after the bytes were written).
  void set_landed(uint64_t first, uint64_t n) {
    const uint64_t end = first + n < h_->blocks ? first + n : h_->blocks;
    for (uint64_t b = first; b < end;) {
      const uint64_t w = b / 64, lo = b % 64;
      const uint64_t hi = end - w * 64 >= 64 ? 64 : end - w * 64;
      const uint64_t mask = (hi == 64 ? ~uint64_t(0) : (uint64_t(1) << hi) - 1) & ~((uint64_t(1) << lo) - 1);
      __atomic_fetch_or(&landed_[w], mask, __ATOMIC_RELEASE);
      b = w * 64 + hi;
    }
  }
  uint64_t landed_word(uint64_t w) const { return __atomic_load_n(&landed_[w], __ATOMIC_ACQUIRE); }
  bool requested(uint64_t block) const { return block >= h_->blocks || (requested_[block / 64] >> (block % 64) & 1); }
  void set_requested(uint64_t block) { requested_[block / 64] |= uint64_t(1) << (block % 64); }

  // Monitor side. False when the ring is full (nothing posted).
  bool post(uint64_t first, uint64_t n) {
    const uint64_t head = __atomic_load_n(&h_->ring_head, __ATOMIC_RELAXED);
    const uint64_t tail = __atomic_load_n(&h_->ring_tail, __ATOMIC_ACQUIRE);
    if (head - tail >= kRingEntries) return false;
    ring_[head % kRingEntries] = RingEntry{first, n};
    __atomic_store_n(&h_->ring_head, head + 1, __ATOMIC_RELEASE);
    return true;
  }
  // Fetcher side. False when the ring is empty.
  bool take(RingEntry* out) {
    const uint64_t tail = __atomic_load_n(&h_->ring_tail, __ATOMIC_RELAXED);
    const uint64_t head = __atomic_load_n(&h_->ring_head, __ATOMIC_ACQUIRE);
    if (tail == head) return false;
    *out = ring_[tail % kRingEntries];
    __atomic_store_n(&h_->ring_tail, tail + 1, __ATOMIC_RELEASE);
    return true;
  }

 private:
  ChannelHeader* h_ = nullptr;
  RingEntry* ring_ = nullptr;
  uint64_t* landed_ = nullptr;
  uint64_t* requested_ = nullptr;
};

// Whether a snapshot location names a remote object (s3://, http://, https://).
inline bool is_remote_location(const char* s) {
  auto starts = [&](const char* p) {
    size_t i = 0;
    for (; p[i]; i++) {
      if (s[i] != p[i]) return false;
    }
    return true;
  };
  return s && (starts("s3://") || starts("http://") || starts("https://"));
}

}  // namespace uffdlazy::remote
