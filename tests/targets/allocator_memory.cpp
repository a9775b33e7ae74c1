// Memory the C library maps for the program (malloc's mmapped chunks, a thread's arena, the brk
// heap) must read zeros when fresh, under a restore too: calloc does not clear such memory, it
// relies on the kernel's zero fill. The program's own mapping, beside it, is restored.
//
//   allocator_memory fill    fills everything with non-zero bytes (record this run)
//   allocator_memory check   makes the same allocations; prints what calloc returned and whether
//                            the program's own mapping came back; status 1 if calloc saw non-zero
//                            bytes or the own mapping is not as recorded
#include <pthread.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr size_t kOwnBytes = 1 << 20;
constexpr size_t kBigChunk = 4 << 20;  // above the mmap threshold: an mmapped chunk
constexpr size_t kHeapChunk = 100 << 10;  // below it: carved from the brk heap
constexpr int kHeapChunks = 20;
constexpr size_t kArenaChunk = 1 << 20;  // a second thread's allocations come from its own arena

size_t nonzero(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  size_t count = 0;
  for (size_t i = 0; i < n; i++) count += b[i] != 0;
  return count;
}

unsigned char own_byte(size_t i) { return static_cast<unsigned char>(0x40 + (i / 4096) % 64); }

struct ArenaResult {
  bool fill;
  size_t nonzero;
};

void* in_thread(void* v) {
  auto* r = static_cast<ArenaResult*>(v);
  void* p = calloc(1, kArenaChunk);
  if (!p) std::abort();
  r->nonzero = nonzero(p, kArenaChunk);
  if (r->fill) std::memset(p, 0xEF, kArenaChunk);
  return nullptr;  // not freed: the arena keeps the bytes until the process ends
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "fill" && mode != "check") {
    std::fprintf(stderr, "usage: allocator_memory fill|check\n");
    return 2;
  }
  const bool fill = mode == "fill";
  auto* own = static_cast<unsigned char*>(
      mmap(nullptr, kOwnBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (own == MAP_FAILED) return 3;
  void* big = calloc(1, kBigChunk);
  void* heap[kHeapChunks];
  size_t heap_nonzero = 0;
  for (int i = 0; i < kHeapChunks; i++) {
    heap[i] = calloc(1, kHeapChunk);
    if (!heap[i]) return 3;
    heap_nonzero += nonzero(heap[i], kHeapChunk);
  }
  if (!big) return 3;
  const size_t big_nonzero = nonzero(big, kBigChunk);
  ArenaResult arena = {fill, 0};
  pthread_t t;
  if (pthread_create(&t, nullptr, in_thread, &arena) != 0 || pthread_join(t, nullptr) != 0) return 3;
  if (fill) {
    for (size_t i = 0; i < kOwnBytes; i++) own[i] = own_byte(i);
    std::memset(big, 0xAB, kBigChunk);
    for (int i = 0; i < kHeapChunks; i++) std::memset(heap[i], 0xCD, kHeapChunk);
    std::printf("filled\n");
    return 0;
  }
  size_t own_wrong = 0;
  for (size_t i = 0; i < kOwnBytes; i++) own_wrong += own[i] != own_byte(i);
  std::printf("calloc mmapped chunk: %zu non-zero bytes\n", big_nonzero);
  std::printf("calloc from the heap: %zu non-zero bytes\n", heap_nonzero);
  std::printf("calloc in a thread's arena: %zu non-zero bytes\n", arena.nonzero);
  std::printf("own mapping: %s\n", own_wrong ? "not as recorded" : "as recorded");
  return big_nonzero || heap_nonzero || arena.nonzero || own_wrong ? 1 : 0;
}
