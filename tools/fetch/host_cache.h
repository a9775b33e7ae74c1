// The host cache of remote snapshot blocks (docs/remote.md, "The host cache"), shared by every
// fetcher of the host, concurrent ones included.
//
// One snapshot's blocks live in two files named by its key (the index digest, which pins every
// block's checksum; a snapshot without one: a hash of its location and ETag):
//   KEY.data   its data area, sparse: block b at b * block size
//   KEY.ready  one byte per block, mapped shared: 1 once the block's bytes are in KEY.data
// A fetcher about to fetch a block holds an OFD write lock on that block's byte of KEY.ready
// (fcntl F_OFD_SETLK): the "pending" entry of the design. The kernel drops the lock when the
// fetcher dies, however it dies, so a pending block of a dead fetcher is simply free again.
// Another fetcher wanting it waits for the lock (F_OFD_SETLKW), then finds it ready, or fetches
// it itself. Bytes are written before the ready byte; every block read from the cache is checked
// against the index's checksum before it is used (and again by the monitor before it is
// installed): a crash at any moment can waste space, never serve a wrong block.
//
// Users hold a shared flock on KEY.ready; eviction (whole snapshots, least recently used first by
// the ready file's mtime, until the total is under UFFDLAZY_CACHE_MAX) takes an exclusive one
// without waiting, so a snapshot being restored is never evicted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace uffdlazy::remote {

class HostCache {
 public:
  ~HostCache();
  // dir: the cache directory (made if missing); key: file-name-safe; max_bytes: the bound.
  // False (with *err) when the cache cannot be used; fetching then goes on without it.
  bool open(const std::string& dir, const std::string& key, uint64_t blocks, uint64_t block_size,
            uint64_t max_bytes, std::string* err);
  bool usable() const { return ready_ != nullptr; }

  bool ready(uint64_t block) const { return __atomic_load_n(&ready_[block], __ATOMIC_ACQUIRE) == 1; }
  // Reads ready blocks [first, first + n) into dst.
  bool read(uint64_t first, uint64_t n, void* dst) const;
  // Claims blocks [first, first + n) for fetching: true when this fetcher now holds all of them
  // (it must store() or release() them); false when another fetcher holds one.
  bool try_claim(uint64_t first, uint64_t n);
  // Waits until no other fetcher holds block b, then holds it.
  bool claim_wait(uint64_t b);
  // Writes fetched blocks, marks them ready, drops the claim.
  void store(uint64_t first, uint64_t n, const void* data);
  void release(uint64_t first, uint64_t n);
  // A ready block that failed its checksum: no longer ready.
  void forget(uint64_t block) { __atomic_store_n(&ready_[block], uint8_t(0), __ATOMIC_RELEASE); }

 private:
  bool lock(uint64_t first, uint64_t n, short type, bool wait);
  void evict(const std::string& dir, const std::string& keep, uint64_t max_bytes);

  int data_fd_ = -1;
  int ready_fd_ = -1;
  uint8_t* ready_ = nullptr;
  uint64_t blocks_ = 0;
  uint64_t block_size_ = 4096;
};

}  // namespace uffdlazy::remote
