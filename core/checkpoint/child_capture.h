// The process's children at a checkpoint. Children that have exited and were not waited for yet
// (zombies) are objects of the image, made again at resume as zombies of the resumed process with
// the same exit status. A child still running is a kChild object when it is a member of the tree
// (tree.h: stopped with this process, it writes its own image); any other is refused.
#pragma once

#include "core/base/line_writer.h"
#include "core/checkpoint/object_table.h"

namespace uffdlazy::ckpt {

// Adds a kZombieChild object per zombie child, in the order the kernel's wait would find them;
// false (with why) for a child that cannot be brought back.
bool capture_children(ObjectTable* objects, LineWriter* why);

}  // namespace uffdlazy::ckpt
