#include "tools/fetch/host_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace uffdlazy::remote {

namespace {

bool make_dirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); i++) {
    if (i == dir.size() || dir[i] == '/') {
      const std::string part = dir.substr(0, i);
      if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return false;
    }
  }
  return true;
}

}  // namespace

HostCache::~HostCache() {
  if (ready_) munmap(ready_, blocks_);
  if (data_fd_ >= 0) close(data_fd_);
  if (ready_fd_ >= 0) close(ready_fd_);
}

bool HostCache::open(const std::string& dir, const std::string& key, uint64_t blocks, uint64_t block_size,
                     uint64_t max_bytes, std::string* err) {
  if (!blocks) return false;
  if (!make_dirs(dir)) {
    *err = dir + ": " + std::strerror(errno);
    return false;
  }
  evict(dir, key, max_bytes > blocks * block_size ? max_bytes - blocks * block_size : 0);
  const std::string base = dir + "/" + key;
  data_fd_ = ::open((base + ".data").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ready_fd_ = ::open((base + ".ready").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (data_fd_ < 0 || ready_fd_ < 0) {
    *err = base + ": " + std::strerror(errno);
    return false;
  }
  flock(ready_fd_, LOCK_SH);  // in use: never evicted meanwhile
  struct stat st;
  // Growing only: a concurrent fetcher of the same snapshot sizes it the same.
  if (fstat(ready_fd_, &st) != 0 || (uint64_t(st.st_size) < blocks && ftruncate(ready_fd_, off_t(blocks)) != 0) ||
      ftruncate(data_fd_, off_t(blocks * block_size)) != 0) {
    *err = base + ": " + std::strerror(errno);
    return false;
  }
  void* m = mmap(nullptr, blocks, PROT_READ | PROT_WRITE, MAP_SHARED, ready_fd_, 0);
  if (m == MAP_FAILED) {
    *err = base + ".ready: " + std::strerror(errno);
    return false;
  }
  futimens(ready_fd_, nullptr);  // recently used
  ready_ = static_cast<uint8_t*>(m);
  blocks_ = blocks;
  block_size_ = block_size;
  return true;
}

bool HostCache::lock(uint64_t first, uint64_t n, short type, bool wait) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = off_t(first);
  fl.l_len = off_t(n);
  for (;;) {
    if (fcntl(ready_fd_, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0) return true;
    if (errno != EINTR) return false;
  }
}

bool HostCache::read(uint64_t first, uint64_t n, void* dst) const {
  const uint64_t bytes = n * block_size_;
  uint64_t got = 0;
  while (got < bytes) {
    const ssize_t r = pread(data_fd_, static_cast<char*>(dst) + got, bytes - got, off_t(first * block_size_ + got));
    if (r <= 0) return false;
    got += uint64_t(r);
  }
  return true;
}

bool HostCache::try_claim(uint64_t first, uint64_t n) { return lock(first, n, F_WRLCK, false); }

bool HostCache::claim_wait(uint64_t b) { return lock(b, 1, F_WRLCK, true); }

void HostCache::store(uint64_t first, uint64_t n, const void* data) {
  const uint64_t bytes = n * block_size_;
  uint64_t put = 0;
  bool ok = true;
  while (put < bytes) {
    const ssize_t w = pwrite(data_fd_, static_cast<const char*>(data) + put, bytes - put, off_t(first * block_size_ + put));
    if (w <= 0) {
      ok = false;
      break;
    }
    put += uint64_t(w);
  }
  // Bytes first, then the ready bytes that point at them.
  if (ok) {
    for (uint64_t b = first; b < first + n; b++) __atomic_store_n(&ready_[b], uint8_t(1), __ATOMIC_RELEASE);
  }
  release(first, n);
}

void HostCache::release(uint64_t first, uint64_t n) { lock(first, n, F_UNLCK, false); }

void HostCache::evict(const std::string& dir, const std::string& keep, uint64_t max_bytes) {
  struct Entry {
    std::string base;
    uint64_t bytes;
    int64_t used;
  };
  std::vector<Entry> all;
  uint64_t total = 0;
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 6 || name.compare(name.size() - 6, 6, ".ready") != 0) continue;
    const std::string base = dir + "/" + name.substr(0, name.size() - 6);
    struct stat data_st, ready_st;
    if (stat((base + ".ready").c_str(), &ready_st) != 0) continue;
    const uint64_t bytes = stat((base + ".data").c_str(), &data_st) == 0 ? uint64_t(data_st.st_blocks) * 512 : 0;
    total += bytes;
    if (name.substr(0, name.size() - 6) != keep) all.push_back({base, bytes, int64_t(ready_st.st_mtime)});
  }
  closedir(d);
  std::sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) { return a.used < b.used; });
  for (const Entry& e : all) {
    if (total <= max_bytes) break;
    const int fd = ::open((e.base + ".ready").c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {  // nobody restores it now
      unlink((e.base + ".data").c_str());
      unlink((e.base + ".ready").c_str());
      total -= e.bytes;
    }
    close(fd);
  }
}

}  // namespace uffdlazy::remote
