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
// A process tree's resume barrier (ckpt::ResumeBarrier; main.cpp): mapped right after the options
// are read; die() before the point of no return tells the rest of the tree, which then ends too.
void open_resume_barrier();
void refuse_resume_barrier();
// Counts this process in and waits for the rest of the tree; ends the process (status 2, no line
// of its own) if another refused.
void pass_resume_barrier();
// "uffdlazy: resume IMAGE: " at the start of a line.
Line& resume_line(Line& l);
uint64_t now_ns();
size_t length(const char* s);
bool same(const char* a, const char* b);

// Options from `uffdlazy resume`.
struct Options {
  int image_fd = -1;
  int barrier_fd = -1;  // a process tree's resume barrier (ckpt::ResumeBarrier), or -1
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
  // The zombie children `uffdlazy resume` made again: the pids the program knows, and their new ones.
  ckpt::ChildPid children[ckpt::kMaxChildPids] = {};
  uint32_t child_count = 0;
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
  const uint8_t* packed = nullptr;  // packed pages' blocks (format 2.1), packed_length bytes
  uint64_t packed_length = 0;
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
  const uint8_t* objects = nullptr;
  uint32_t object_count = 0, object_stride = 0;
  const char* object_strings = nullptr;
  const uint8_t* object_data = nullptr;  // the object data section
  uint64_t object_data_length = 0;

  const snap::ThreadRecord& thread(uint32_t i) const {
    return *reinterpret_cast<const snap::ThreadRecord*>(threads + uint64_t(i) * thread_stride);
  }
  const snap::MappingRecord& mapping(uint32_t i) const {
    return *reinterpret_cast<const snap::MappingRecord*>(mappings + uint64_t(i) * mapping_stride);
  }
  snap::DescriptorRecord descriptor(uint32_t i) const {
    return snap::read_descriptor(descriptors + uint64_t(i) * descriptor_stride, descriptor_stride);
  }
  const snap::ObjectRecord& object(uint32_t i) const {
    return *reinterpret_cast<const snap::ObjectRecord*>(objects + uint64_t(i) * object_stride);
  }
  const char* object_string(snap::StringRef s) const { return object_strings + s.offset; }
  const uint8_t* data_of(const snap::ObjectRecord& o) const { return object_data + o.data_offset; }
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
// Closes the resumer's descriptors, moves the image's and the userfaultfd's to their places;
// returns the image's descriptor number for the monitor. *staging: the first number free for
// objects above every number the process uses.
int prepare_descriptors(int uffd, int* staging);
void monitor_descriptors(int image_fd);  // on the monitor's thread: its own table
void restore_itimers();
void restore_rlimits();
// The program's address-space limit (RLIMIT_AS, restored before the monitor starts) leaves room
// for the monitor's mapping of the image: else a lazy resume would fail after the point of no
// return.
bool room_for_lazy_resume();

// objects.cpp: what each object was made as, before the point of no return.
inline constexpr uint32_t kMaxObjects = 1u << 16;
struct Made {
  int fd = -1;         // the object (a pipe: its read end; SysV memory: the segment's id)
  int write_end = -1;  // a pipe's write end
  bool read_taken = false, write_taken = false;  // pipe ends given to a description already
  bool sysv_held = false;  // a SysV segment attached in the zone until its mappings are made
};
extern Made g_made[kMaxObjects];
extern int g_staging_floor;  // descriptors from here up are staged objects
// Moves a new descriptor above every number the process uses; refuses (exit 2) when fd < 0.
int stage(long fd, const char* what);
// Refuses the resume before the point of no return, undoing what is visible outside (socket
// files bound so far).
[[noreturn]] void refuse_objects(Line& l);
void create_objects(int first_staging);
void place_descriptors();     // every descriptor at its number, epoll lists, memfd seals
void add_epoll_entries();
void arm_timers();            // timerfds and POSIX timers, with the time they had left
void arm_posix_timer(const snap::ObjectRecord& o);
bool posix_timers_possible();  // the kernel can give timers their ids back

// sockets.cpp
void make_sockets();
void unbind_sockets();

// files.cpp
long make_unnamed(const char* path, uint32_t mode, const char* what);
void deleted_file_object(uint32_t i, const snap::ObjectRecord& o);
void memfd_object(uint32_t i, const snap::ObjectRecord& o);
void seal_memfds();
bool enter_deleted_cwd();  // true when the working directory was a deleted one (made and entered)

// shared_memory.cpp
void shared_memory_object(uint32_t i, const snap::ObjectRecord& o);  // SysV: the segment
long map_shared(const snap::MappingRecord& m);  // a kShared mapping, at its address
void release_shared_memory();  // once every mapping is made

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
long new_tid_of(uint32_t old_tid);  // after start_threads; -1 if unknown
[[noreturn]] void release_and_become_leader();

// runtime.cpp
extern "C" [[noreturn]] void restorer_jump(const snap::JumpContext* ctx);
extern "C" long restorer_spawn(unsigned long flags, void* stack_top, void (*fn)(void*), void* arg);

}  // namespace restorer
