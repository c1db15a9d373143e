// The agent's side of a process session's console: a blocking client of
// SESSION_DIR/console.sock, served by bai-session-shim when spec.json has "console".
//
// A connection is either the session's console (attach: the command's stdin, output
// and exit; one at a time, a newer attach takes over and the older one gets an Error
// frame) or one exec (another command in the session; its own stdin, output and exit).
// Frames are those of sdk/lib/stream_frames.hpp:
//   client -> shim: Stdin, Resize, Eof
//   shim -> client: Stdout, Stderr (never with a tty), then Exit or Error, then close.
// Refusals (too many execs, the session has ended, a bad request) arrive as the first
// frame read, an Error. A client that closes leaves the session running; closing an
// exec's connection hangs the exec up.
//
// Threads: one thread may read() while another write()s; shutdown() may be called from
// any thread and unblocks both.
#pragma once

#include "bai/result.hpp"
#include "runtime/console_protocol.hpp"
#include "stream_frames.hpp"

#include <filesystem>
#include <memory>
#include <optional>

namespace bai::core {

class ShimConsoleConnection {
 public:
  // NotFound when the session has no console socket or no shim listens on it (not
  // interactive, or ended).
  static Result<std::unique_ptr<ShimConsoleConnection>> attach(const std::filesystem::path& sessionDir,
                                                               std::optional<stream::TerminalSize> size);
  static Result<std::unique_ptr<ShimConsoleConnection>> exec(const std::filesystem::path& sessionDir,
                                                             const ShimExecRequest& request);

  ShimConsoleConnection(const ShimConsoleConnection&) = delete;
  ShimConsoleConnection& operator=(const ShimConsoleConnection&) = delete;
  ~ShimConsoleConnection();

  // The next frame; nullopt when the shim closed the connection. An error for a broken
  // stream (a frame over kMaxConsoleFrameBytes, a read error).
  Result<std::optional<stream::Frame>> read();
  // OutOfRange for a frame over kMaxConsoleFrameBytes; Internal when the shim is gone.
  Result<void> write(const stream::Frame& frame);
  // Ends the connection both ways; a blocked read() then returns nullopt.
  void shutdown();

 private:
  explicit ShimConsoleConnection(int fd) : fd_(fd) {}
  static Result<std::unique_ptr<ShimConsoleConnection>> open(const std::filesystem::path& sessionDir,
                                                             const stream::Frame& first);

  int fd_;
  SocketFrameDecoder decoder_;  // only read() touches it
};

}  // namespace bai::core
