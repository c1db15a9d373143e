// Forwards the user's terminal to an interactive stream (`bai session run -i/-t`, `exec`,
// `attach`): stdin as Stdin frames (end of file as Eof), Stdout and Stderr frames to our
// stdout and stderr, window changes as Resize, until the command's Exit.
#pragma once

#include "frame_stream.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace bai::cli {

// Ctrl-P Ctrl-Q, as docker's default: typed on a session's console it leaves the
// session running. A Ctrl-P is held back until the next byte shows whether the
// sequence follows; any other byte sends it on.
class DetachKeys {
 public:
  static constexpr char kFirst = '\x10';   // Ctrl-P
  static constexpr char kSecond = '\x11';  // Ctrl-Q

  // The bytes of `input` to send on; after the sequence, nothing more.
  std::string feed(std::string_view input);
  // The held Ctrl-P, when input ends.
  std::string flush();
  bool detached() const { return detached_; }

 private:
  bool holding_ = false;
  bool detached_ = false;
};

struct ConsoleOptions {
  int input = 0;   // stdin
  int output = 1;  // stdout
  int errors = 2;  // stderr
  bool forwardInput = true;   // false: nothing of `input` is read (no -i)
  bool detachKeys = false;    // Ctrl-P Ctrl-Q ends the forwarding (a session's console)
  // Readable with one byte per signal (SignalPipe): SIGWINCH sends the size, any other
  // ends the forwarding as Interrupted. -1: none.
  int signalFd = -1;
  std::function<std::vector<int>()> drainSignals = {};
  std::function<std::optional<client::TerminalSize>()> windowSize = {};
};

struct ConsoleOutcome {
  enum class Kind {
    Exited,       // `exitCode`: the command's
    Detached,     // the user typed the detach keys
    Interrupted,  // a signal (Ctrl-C without a tty, SIGTERM, SIGHUP)
    Failed,       // `message`: the server's Error, or our output could not be written
    Lost,         // `message`: the connection closed without an exit code
  };
  Kind kind = Kind::Lost;
  int exitCode = 0;
  std::string message = "";
};

// Runs until the stream ends or the user leaves it; the stream is closed on return.
// Reads one chunk of input only after the previous one was sent, and receives the next
// frame only after the last one was written out: a slow side slows the other.
ConsoleOutcome forwardConsole(FrameStream& stream, const ConsoleOptions& options);

// Writes all of `bytes` to `fd` (retrying short writes and EINTR); false on an error.
bool writeAll(int fd, std::string_view bytes);

}  // namespace bai::cli
