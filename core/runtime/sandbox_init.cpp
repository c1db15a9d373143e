#include "runtime/sandbox_init.hpp"

#include <cerrno>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace bai::core::sandbox {
namespace {

constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

sigset_t waitedSignals() {
  sigset_t waited;
  sigemptyset(&waited);
  for (int signal : kForwardedSignals) sigaddset(&waited, signal);
  sigaddset(&waited, SIGCHLD);
  return waited;
}

}  // namespace

void blockInitSignals() {
  sigset_t waited = waitedSignals();
  ::sigprocmask(SIG_BLOCK, &waited, nullptr);
  ::signal(SIGCHLD, SIG_DFL);  // SIG_IGN would let the kernel reap the command unseen
}

void superviseCommand(pid_t command, int reportPipe) {
  const sigset_t waited = waitedSignals();
  for (;;) {
    siginfo_t info{};
    int signal = ::sigwaitinfo(&waited, &info);
    if (signal < 0) continue;  // EINTR
    if (signal != SIGCHLD) {
      ::kill(-command, signal);
      continue;
    }
    int status = 0;
    for (pid_t reaped; (reaped = ::waitpid(-1, &status, WNOHANG)) > 0;) {
      if (reaped != command) continue;
      (void)!::write(reportPipe, &status, sizeof status);
      ::_exit(0);
    }
  }
}

}  // namespace bai::core::sandbox
