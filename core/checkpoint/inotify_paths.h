// The paths of inotify watches, noted when the program adds them (preload/object_interposers.cpp),
// for a checkpoint: fdinfo names a watch's inode, and only a privileged process could open an
// inode without its path. A resume adds each watch again by path.
//
// A fixed table in the shim's own memory (mapped at the first watch), keyed by (descriptor, watch
// descriptor). An entry may outlive its watch (the descriptor closed and its number reused): the
// checkpoint uses a path only if it still names the inode fdinfo shows.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy::ckpt {

// After inotify_add_watch(fd, path, ...) returned wd.
void note_inotify_watch(int fd, int wd, const char* path);
// After inotify_rm_watch(fd, wd) succeeded.
void forget_inotify_watch(int fd, int wd);
// The absolute path noted for (fd, wd) if it names the inode (dev, ino) (*nofollow: only when its
// last symlink is not followed); its length, or -1.
long inotify_watch_path(int fd, int wd, uint64_t dev, uint64_t ino, char* out, size_t cap, bool* nofollow);

}  // namespace uffdlazy::ckpt
