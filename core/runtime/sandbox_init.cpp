#include "runtime/sandbox_init.hpp"

#include <cerrno>
#include <csignal>
#include <map>
#include <poll.h>
#include <sys/signalfd.h>
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

// A group whose leader has not made it yet (a tty command calls setsid itself) is
// signalled through its leader.
void signalGroup(pid_t leader, int signal) {
  if (::kill(-leader, signal) != 0 && errno == ESRCH) ::kill(leader, signal);
}

class InitLoop {
 public:
  InitLoop(pid_t command, int reportPipe, int execChannel, const ExecStarter& startExec)
      : command_(command), reportPipe_(reportPipe), execChannel_(execChannel), startExec_(startExec) {}

  [[noreturn]] void run() {
    const sigset_t waited = waitedSignals();
    const int signals = ::signalfd(-1, &waited, SFD_CLOEXEC);
    for (;;) {
      pollfd fds[2] = {{signals, POLLIN, 0}, {execChannel_, POLLIN, 0}};
      if (::poll(fds, execChannel_ >= 0 ? 2 : 1, -1) < 0) continue;  // EINTR
      if (fds[0].revents != 0) takeSignal(signals);
      if (execChannel_ >= 0 && fds[1].revents != 0) takeExecMessage();
    }
  }

 private:
  void takeSignal(int signals) {
    signalfd_siginfo info{};
    if (::read(signals, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return;
    if (static_cast<int>(info.ssi_signo) != SIGCHLD) return signalGroup(command_, static_cast<int>(info.ssi_signo));
    int status = 0;
    for (pid_t reaped; (reaped = ::waitpid(-1, &status, WNOHANG)) > 0;) {
      if (reaped == command_) {
        (void)!::write(reportPipe_, &status, sizeof status);
        ::_exit(0);
      }
      auto exec = execs_.find(reaped);
      if (exec == execs_.end()) continue;
      (void)shim::sendExecEnded(execChannel_, exec->second, status);
      execs_.erase(exec);
    }
  }

  void takeExecMessage() {
    Result<std::optional<shim::ExecMessage>> message = shim::receiveExecMessage(execChannel_);
    if (!message.ok()) return;
    if (!message->has_value()) {  // the shim is gone: nobody to serve
      ::close(execChannel_);
      execChannel_ = -1;
      return;
    }
    const shim::ExecMessage& request = **message;
    if (request.kind == shim::ExecMessageKind::Start) {
      pid_t pid = startExec_(request);
      if (pid > 0) {
        execs_[pid] = request.id;
      } else {
        (void)shim::sendExecEnded(execChannel_, request.id, W_EXITCODE(126, 0));
      }
    } else if (request.kind == shim::ExecMessageKind::HangUp) {
      for (const auto& [pid, id] : execs_) {
        if (id == request.id) signalGroup(pid, SIGHUP);
      }
    }
  }

  pid_t command_;
  int reportPipe_;
  int execChannel_;
  const ExecStarter& startExec_;
  std::map<pid_t, std::uint32_t> execs_;  // the execs running, by pid in the namespace
};

}  // namespace

void blockInitSignals() {
  sigset_t waited = waitedSignals();
  ::sigprocmask(SIG_BLOCK, &waited, nullptr);
  ::signal(SIGCHLD, SIG_DFL);  // SIG_IGN would let the kernel reap the command unseen
}

void superviseCommand(pid_t command, int reportPipe, int execChannel, const ExecStarter& startExec) {
  InitLoop(command, reportPipe, execChannel, startExec).run();
}

}  // namespace bai::core::sandbox
