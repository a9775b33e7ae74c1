// The pager's side of `uffdlazy checkpoint` and of a resume (core/checkpoint/ does the work).
#pragma once

namespace uffdlazy::pager {

// Removes UFFDLAZY_CHECKPOINT, _AT and _THEN from the environment (in place): the programs this
// one starts do not inherit the checkpoint.
void take_checkpoint_variables(char** envp);
// UFFDLAZY_CHECKPOINT is set: installs what a checkpoint needs and arms its trigger. False (with a
// line printed) if that cannot be done.
bool arm_checkpointing();
// The exit status of a program run for a checkpoint, when no image was written (with a line
// saying why): 4 instead of 0 when the checkpoint could not have been taken (the program took its
// trigger signal for itself, or its process ends while a child it forked runs on: a checkpoint
// does not follow a child), else 2 instead of 0. Any other status passes through.
int checkpoint_exit_status(int status);
// The program takes the checkpoint's trigger signal for itself (`how`: the call, "sigaction",
// "sigwait", ...): says so at once, and the shim gives the signal up. Before the program's own
// disposition is installed.
void program_takes_trigger(const char* how);
// A checkpoint is armed in this process (not a forked child) and none was written yet.
bool checkpoint_armed_here();
// The signal that triggers the checkpoint while the shim keeps it, else 0.
int checkpoint_trigger_signal();

}  // namespace uffdlazy::pager
