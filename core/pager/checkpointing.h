// The pager's side of `uffdlazy checkpoint` and of a resume (core/checkpoint/ does the work).
#pragma once

namespace uffdlazy::pager {

// UFFDLAZY_CHECKPOINT is set: installs what a checkpoint needs and arms its trigger. False (with a
// line printed) if that cannot be done.
bool arm_checkpointing();
// At exit: a checkpoint was asked for and no image was written (the exit status must not be 0).
bool checkpoint_missing();

}  // namespace uffdlazy::pager
