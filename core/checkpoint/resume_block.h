// The shim's ResumeBlock (resume_protocol.h): one per process, filled in by the restorer.
#pragma once

#include "core/checkpoint/resume_protocol.h"

namespace uffdlazy::ckpt {

ResumeBlock& resume_block();

}  // namespace uffdlazy::ckpt
