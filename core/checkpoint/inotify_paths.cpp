#include "core/checkpoint/inotify_paths.h"

#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/base/aside_mmap.h"
#include "core/base/blocked_section.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy::ckpt {

namespace {

constexpr uint32_t kMaxWatches = 4096;
constexpr size_t kMaxPath = 4096;

struct Key {
  int32_t fd, wd;  // wd 0: free (the kernel's watch descriptors start at 1)
};
struct Table {
  Key keys[kMaxWatches];
  char paths[kMaxWatches][kMaxPath];
};

constinit Table* g_table = nullptr;
constinit SpinLock g_lock;

bool mapped() {
  if (g_table) return true;
  long m = mmap_aside(sizeof(Table), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sys::failed(m)) return false;
  g_table = reinterpret_cast<Table*>(m);
  return true;
}

// Index of (fd, wd), or -1.
long find(int fd, int wd) {
  for (uint32_t i = 0; i < kMaxWatches; i++) {
    if (g_table->keys[i].fd == fd && g_table->keys[i].wd == wd) return long(i);
  }
  return -1;
}

}  // namespace

void note_inotify_watch(int fd, int wd, const char* path) {
  BlockedSection hold(g_lock);
  if (!mapped()) return;
  long i = find(fd, wd);
  if (i < 0) i = find(0, 0);
  if (i < 0) return;  // full: that watch cannot be checkpointed (refused then)
  char* out = g_table->paths[i];
  size_t n = 0;
  if (path[0] != '/') {
    const long r = sys::call6(SYS_getcwd, long(out), kMaxPath);
    if (r <= 0) return;
    n = strlen(out);
    if (n + 1 < kMaxPath && (n == 0 || out[n - 1] != '/')) out[n++] = '/';
  }
  const size_t k = strlen(path);
  if (n + k >= kMaxPath) return;
  memcpy(out + n, path, k + 1);
  g_table->keys[i] = Key{fd, wd};
}

void forget_inotify_watch(int fd, int wd) {
  BlockedSection hold(g_lock);
  if (!g_table) return;
  const long i = find(fd, wd);
  if (i >= 0) g_table->keys[i] = Key{0, 0};
}

long inotify_watch_path(int fd, int wd, uint64_t dev, uint64_t ino, char* out, size_t cap, bool* nofollow) {
  BlockedSection hold(g_lock);
  if (!g_table) return -1;
  const long i = find(fd, wd);
  if (i < 0) return -1;
  const char* path = g_table->paths[i];
  for (int flags : {0, AT_SYMLINK_NOFOLLOW}) {
    struct stat st;
    if (sys::call6(SYS_newfstatat, AT_FDCWD, long(path), long(&st), flags) == 0 && uint64_t(st.st_dev) == dev &&
        uint64_t(st.st_ino) == ino) {
      const size_t n = strlen(path);
      if (n >= cap) return -1;
      *nofollow = flags != 0;
      memcpy(out, path, n + 1);
      return long(n);
    }
  }
  return -1;
}

}  // namespace uffdlazy::ckpt
