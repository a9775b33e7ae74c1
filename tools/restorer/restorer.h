// uffdlazy-restorer: rebuilds a checkpointed process from its image, in place of itself, and lets
// its threads go on where they stopped. Started only by `uffdlazy resume`, which has checked the
// image and passes it as an open descriptor.
//
// Freestanding: no libc, no TLS, no stack protector, no heap. It runs at a fixed address inside
// its zone (process_format.h kRestorerZone*), which the image is guaranteed not to use; its own
// stack is in .bss, the image is mapped read-only in the zone, thread stacks too. Everything it
// relies on is eagerly in place before any lazy range is registered.
//
// Files: main.cpp (the order of steps), image.cpp (the image's sections), address_space.cpp
// (unmapping itself, the vDSO, mappings, eager pages, userfaultfd registration), process_state.cpp
// (mm fields, signals, limits, timers, descriptors), threads.cpp (clone, per-thread kernel state,
// the release order), runtime.cpp (entry point, jump, clone, memcpy and friends, output).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/base/raw_syscall.h"
#include "core/checkpoint/resume_protocol.h"
#include "core/snapshot/format.h"
#include "core/snapshot/process_format.h"

namespace restorer {

namespace sys = uffdlazy::sys;
namespace snap = uffdlazy::snap;
namespace ckpt = uffdlazy::ckpt;

// Zone layout.
inline constexpr uint64_t kZone = snap::kRestorerZoneStart;
inline constexpr uint64_t kScratch = kZone + 0x10000000ull;   // thread stacks
inline constexpr uint64_t kVdsoTemp = kZone + 0x40000000ull;  // the vDSO on its way
inline constexpr uint64_t kImageAt = kZone + 0x100000000ull;  // the image, read-only

// Exit statuses: 2 the image cannot be resumed here (one line says why), 3 lazy resume asked
// with --strict but no userfaultfd, 1 an internal failure after the point of no return.
inline constexpr int kRefused = 2;
inline constexpr int kNoUffd = 3;
inline constexpr int kBroken = 1;

// One line of output, written with a single write(2) to fd 2.
class Line {
 public:
  Line& s(const char* text);
  Line& s(const char* text, size_t n);
  Line& u(uint64_t v);
  Line& x(uint64_t v);
  Line& i(int64_t v);
  Line& err(long negative_errno);
  void emit();

 private:
  char buf_[1024];
  size_t n_ = 0;
};

[[noreturn]] void die(int status, Line& line);
uint64_t now_ns();
size_t length(const char* s);
bool same(const char* a, const char* b);

// Options from `uffdlazy resume`.
struct Options {
  int image_fd = -1;
  bool lazy = true;
  bool strict = false;
  bool stats = false;
  bool verify = true;
  bool trace = false;
  bool incremental = false;  // track writes for incremental checkpoints (also: the image asks for it)
  uint64_t launch_ns = 0;
  uint32_t prefetch = ckpt::kResumePrefetchAll;  // kResumePrefetch* (UFFDLAZY_PREFETCH of the caller)
  uint32_t readahead = 1024;                     // pages (UFFDLAZY_READAHEAD of the caller)
  char report[1024] = {};
  char image[1024] = {};
  char checkpoint[1024] = {};
};
extern Options g_options;
void trace(const char* step);

// The image, mapped at kImageAt.
struct Image {
  const uint8_t* base = nullptr;
  uint64_t size = 0;
  const snap::FileHeader* header = nullptr;
  const snap::RegionRecord* regions = nullptr;
  uint64_t region_count = 0;
  const snap::RunRecord* runs = nullptr;
  const snap::PageEntry* entries = nullptr;
  const snap::ProcessRecord* process = nullptr;
  const char* process_strings = nullptr;
  const uint8_t* threads = nullptr;
  uint32_t thread_count = 0, thread_stride = 0;
  const uint8_t* mappings = nullptr;
  uint32_t mapping_count = 0, mapping_stride = 0;
  const char* mapping_strings = nullptr;
  const uint8_t* descriptors = nullptr;
  uint32_t descriptor_count = 0, descriptor_stride = 0;
  const char* descriptor_strings = nullptr;

  const snap::ThreadRecord& thread(uint32_t i) const {
    return *reinterpret_cast<const snap::ThreadRecord*>(threads + uint64_t(i) * thread_stride);
  }
  const snap::MappingRecord& mapping(uint32_t i) const {
    return *reinterpret_cast<const snap::MappingRecord*>(mappings + uint64_t(i) * mapping_stride);
  }
  const snap::DescriptorRecord& descriptor(uint32_t i) const {
    return *reinterpret_cast<const snap::DescriptorRecord*>(descriptors + uint64_t(i) * descriptor_stride);
  }
  long mapping_at(uint64_t addr) const;
  // The settings of the process and of thread i (image.cpp); none known in an image written
  // before they were recorded (its records are shorter).
  const snap::ProcessSettings& settings() const;
  const snap::ThreadSettings& thread_settings(const snap::ThreadRecord& t) const;
  uint32_t process_stride = 0;
};
extern Image g_image;
void map_image();

// address_space.cpp
void check_compatible();      // refusals before anything is changed
void check_files();
int open_userfaultfd();       // -errno when none with kernel faults is available
extern uint64_t g_uffd_features;  // what the kernel granted the userfaultfd
bool tracking_writes();           // incremental checkpoints asked for (option or image) and granted
void leave_own_address_space();
void map_everything();
void fill_eager_pages(bool lazy);
void protect_everything();
// Registers the lazy ranges (and the doorbell), after checking that nothing the restorer did has
// put a page in any of them: such a page would never be served from the image.
void register_lazy(int uffd, bool lazy);
extern uint64_t g_eager_pages, g_lazy_pages;

// process_state.cpp
void restore_mm();
void restore_process_state();
int prepare_descriptors(int uffd);  // returns the image's descriptor number for the monitor
void monitor_descriptors(int image_fd);  // on the monitor's thread: its own table
void restore_descriptors();
void restore_itimers();
void restore_rlimits();
// The program's address-space limit (RLIMIT_AS, restored before the monitor starts) leaves room
// for the monitor's mapping of the image: else a lazy resume would fail after the point of no
// return.
bool room_for_lazy_resume();

// process_settings.cpp
// The process-wide settings (ids and groups, oom_score_adj, THP, membarrier, ...): set before the
// point of no return, and the resume refused with one line when one cannot be.
void restore_process_settings();
// Those the restorer's own work would trip over (memory-deny-write-execute), after it.
void restore_late_settings();
// The calling thread's own (scheduling, affinity, capabilities, ...), on each thread.
void restore_thread_settings(const snap::ThreadRecord& t);
// The leases on the reopened descriptors (after restore_descriptors).
void restore_leases();

// threads.cpp
// uffd: the userfaultfd's number in the process (the shim's), or -1 when there is none.
void start_threads(int image_fd, int uffd);
[[noreturn]] void release_and_become_leader();

// runtime.cpp
extern "C" [[noreturn]] void restorer_jump(const snap::JumpContext* ctx);
extern "C" long restorer_spawn(unsigned long flags, void* stack_top, void (*fn)(void*), void* arg);

}  // namespace restorer
