// The init of a sandboxed session: pid 1 of its PID namespace. The kernel gives pid 1 no
// default signal actions, so a bare `sleep` there would survive SIGTERM; this init
// instead forwards termination signals to the command's group, reaps every orphan, and
// when the command ends reports its wait status and exits, which makes the kernel kill
// whatever is left in the namespace.
#pragma once

#include <sys/types.h>

namespace bai::core::sandbox {

// Blocks the signals init waits for (the forwarded ones and SIGCHLD), so that none sent
// before superviseCommand() is lost. Call before forking the command, which must restore
// its own mask before exec.
void blockInitSignals();

// Forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the group of `command`,
// reaps children, writes the command's raw wait status (an int) to `reportPipe` once it
// ends, and exits.
[[noreturn]] void superviseCommand(pid_t command, int reportPipe);

}  // namespace bai::core::sandbox
