// The init of a sandboxed session: pid 1 of its PID namespace. The kernel gives pid 1 no
// default signal actions, so a bare `sleep` there would survive SIGTERM; this init
// instead forwards termination signals to the command's group, reaps every orphan, and
// when the command ends reports its wait status and exits, which makes the kernel kill
// whatever is left in the namespace (the session's execs with it).
//
// An interactive session's init also starts execs inside the namespaces for the shim
// (runtime/shim_exec_channel.hpp) and reports each one's end.
#pragma once

#include "runtime/shim_exec_channel.hpp"

#include <functional>
#include <sys/types.h>

namespace bai::core::sandbox {

// Blocks the signals init waits for (the forwarded ones and SIGCHLD), so that none sent
// before superviseCommand() is lost. Call before forking the command, which must restore
// its own mask before exec.
void blockInitSignals();

// Forks an exec from a Start message (the message's descriptors are its 0, 1, 2; the
// callback closes them in init); the child's pid, or -1 when it could not be forked.
using ExecStarter = std::function<pid_t(const shim::ExecMessage& start)>;

// Forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the group of `command`,
// reaps children, writes the command's raw wait status (an int) to `reportPipe` once it
// ends, and exits. With `execChannel` (else -1) it also serves the shim's exec requests.
[[noreturn]] void superviseCommand(pid_t command, int reportPipe, int execChannel, const ExecStarter& startExec);

}  // namespace bai::core::sandbox
