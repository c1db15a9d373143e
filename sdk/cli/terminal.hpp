// The user's terminal for `bai session run -t`, `exec -t` and `attach`: raw mode that is
// restored on every way out, the window's size, and signals turned into bytes on a pipe
// so that a polling thread sees SIGWINCH, Ctrl-C and termination.
#pragma once

#include <bai/client.hpp>

#include <initializer_list>
#include <optional>
#include <vector>

namespace bai::cli {

bool isTerminal(int fd);
// The window's size; nullopt when `fd` is not a terminal or says 0 x 0.
std::optional<client::TerminalSize> terminalSize(int fd);

// Raw mode on `fd` while alive (bytes as typed, no echo, Ctrl-C a byte rather than
// SIGINT), when it is a terminal. The saved mode is restored by the destructor, and by
// the signal handlers of SignalPipe before a second termination signal ends the process.
class RawTerminal {
 public:
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

  bool active() const { return active_; }

 private:
  int fd_;
  bool active_ = false;
};

// Process-wide: the handled signals arrive as one byte each (the signal's number) on
// fd(). A second SIGINT, SIGTERM or SIGHUP before the first was read restores the
// terminal and ends the process at once (exit 128 + signal), so `bai` never hangs on
// its way out. SIGPIPE is ignored: a closed output is a write error, not death.
class SignalPipe {
 public:
  // Installs the handlers (once per process; later calls add signals).
  static SignalPipe& install(std::initializer_list<int> signals);
  int fd() const;
  // The signals received since the last call, in order.
  std::vector<int> drain();
};

}  // namespace bai::cli
