// Where a region's pages come from when they are first touched.
//
// Regions without a source (the default) are filled with zeros, exactly as the kernel would.
// A source (the snapshot store) owes each of its pages at most once: after a page has been served,
// dropped (madvise, munmap) or made irrelevant, every later fault on it reads zeros.
#pragma once

#include <cstdint>

namespace uffdlazy {

enum class PageKind : uint8_t {
  kZero,       // serve zeros (the source does not owe this page)
  kData,       // serve `data`
  kDuplicate,  // serve `data`, which is shared with other pages
  kCorrupt,    // the stored page failed its checksum: must never reach the program
};

struct PageContent {
  PageKind kind;
  const void* data;
};

class PageSource {
 public:
  // What page `page` of source region `source` should hold now, without consuming it.
  virtual PageContent peek(int32_t source, uint64_t page) { (void)source; (void)page; return {PageKind::kZero, nullptr}; }
  // The page is in place (or can no longer be served): never serve it again.
  virtual void consume(int32_t source, uint64_t page) { (void)source; (void)page; }
  // The program dropped pages [first, first + count): forget them.
  virtual void drop(int32_t source, uint64_t first, uint64_t count) { (void)source; (void)first; (void)count; }
  // Pages still owed, anywhere. Used to decide whether stopping the monitor is safe.
  virtual uint64_t owed_pages() const { return 0; }

 protected:
  ~PageSource() = default;
};

}  // namespace uffdlazy
