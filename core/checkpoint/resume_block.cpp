#include "core/checkpoint/resume_block.h"

namespace uffdlazy::ckpt {

namespace {
constinit ResumeBlock g_block = {};
}

ResumeBlock& resume_block() { return g_block; }

}  // namespace uffdlazy::ckpt
