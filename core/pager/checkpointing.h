// The pager's side of `uffdlazy checkpoint` and of a resume (core/checkpoint/ does the work).
#pragma once

namespace uffdlazy::pager {

// Removes UFFDLAZY_CHECKPOINT, _AT and _THEN from the environment (in place): the programs this
// one starts do not inherit the checkpoint.
void take_checkpoint_variables(char** envp);
// UFFDLAZY_CHECKPOINT is set: installs what a checkpoint needs and arms its trigger. False (with a
// line printed) if that cannot be done.
bool arm_checkpointing();
// The exit status of a program run for a checkpoint: `status`, or 2 (with a line saying why) when
// it would be 0 although no image was written.
int checkpoint_exit_status(int status);

}  // namespace uffdlazy::pager
