#include "terminal.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <stdexcept>

namespace bai::cli {
namespace {

// Read by the signal handler: only what async-signal-safe code may touch.
int signalWriteFd = -1;
int signalReadFd = -1;
std::atomic<int> unreadTerminations{0};
std::atomic<int> rawFd{-1};
termios savedMode{};

void restoreTerminal() {
  const int fd = rawFd.load();
  if (fd >= 0) ::tcsetattr(fd, TCSANOW, &savedMode);
}

void onSignal(int signal) {
  const int savedErrno = errno;
  const bool terminates = signal == SIGINT || signal == SIGTERM || signal == SIGHUP;
  if (terminates && unreadTerminations.fetch_add(1) >= 1) {
    restoreTerminal();
    ::_exit(128 + signal);
  }
  const unsigned char byte = static_cast<unsigned char>(signal);
  [[maybe_unused]] const ssize_t written = ::write(signalWriteFd, &byte, 1);
  errno = savedErrno;
}

}  // namespace

bool isTerminal(int fd) { return ::isatty(fd) == 1; }

std::optional<client::TerminalSize> terminalSize(int fd) {
  winsize size{};
  if (::ioctl(fd, TIOCGWINSZ, &size) != 0 || size.ws_row == 0 || size.ws_col == 0) return std::nullopt;
  return client::TerminalSize{size.ws_row, size.ws_col};
}

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  termios mode{};
  if (!isTerminal(fd) || ::tcgetattr(fd, &mode) != 0) return;
  savedMode = mode;
  rawFd = fd;
  ::cfmakeraw(&mode);
  active_ = ::tcsetattr(fd, TCSANOW, &mode) == 0;
  if (!active_) rawFd = -1;
}

RawTerminal::~RawTerminal() {
  if (!active_) return;
  ::tcsetattr(fd_, TCSANOW, &savedMode);
  rawFd = -1;
}

SignalPipe& SignalPipe::install(std::initializer_list<int> signals) {
  static SignalPipe instance;
  if (signalWriteFd < 0) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("bai: cannot create the signal pipe");
    signalReadFd = fds[0];
    signalWriteFd = fds[1];
    std::signal(SIGPIPE, SIG_IGN);
  }
  for (int signal : signals) {
    struct sigaction action {};
    action.sa_handler = onSignal;
    sigemptyset(&action.sa_mask);
    ::sigaction(signal, &action, nullptr);
  }
  return instance;
}

int SignalPipe::fd() const { return signalReadFd; }

std::vector<int> SignalPipe::drain() {
  std::vector<int> out;
  unsigned char bytes[64];
  for (ssize_t n; (n = ::read(signalReadFd, bytes, sizeof bytes)) > 0;) {
    for (ssize_t i = 0; i < n; ++i) {
      out.push_back(bytes[i]);
      if (bytes[i] == SIGINT || bytes[i] == SIGTERM || bytes[i] == SIGHUP) unreadTerminations.fetch_sub(1);
    }
  }
  return out;
}

}  // namespace bai::cli
