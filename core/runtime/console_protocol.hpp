// What bai-session-shim and its clients (the agent's ShimConsoleConnection, the tests)
// agree on at SESSION_DIR/console.sock: the socket's name, the frames on it (a 4-byte
// big-endian length, then a frame of sdk/lib/stream_frames.hpp), their size limit, and
// the JSON of an Exec frame. Compiled into both the shim and bai-core.
#pragma once

#include "bai/result.hpp"
#include "stream_frames.hpp"

#include <cstddef>
#include <filesystem>
#include <sys/socket.h>
#include <sys/un.h>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bai::core {

inline constexpr const char* kConsoleSocketName = "console.sock";
// A frame (type byte and payload) larger than this is refused by either end.
inline constexpr std::size_t kMaxConsoleFrameBytes = 1 << 20;
// Execs running at once in one session; one more is refused with an Error frame.
inline constexpr std::size_t kMaxExecsPerSession = 16;

// Another command in a running session: as the session's user, in its cgroups and
// namespaces, in its work dir, with the session's environment plus `env`.
struct ShimExecRequest {
  std::vector<std::string> command;          // argv; argv[0] is looked up in the session's PATH
  std::map<std::string, std::string> env;    // added to (and overriding) the session's
  bool tty = false;                          // its own pseudo-terminal; else pipes
  bool openStdin = false;                    // else its stdin is /dev/null
  std::optional<stream::TerminalSize> size;  // the tty's initial size (default 24x80)
};

// {"command": [...], "env": {...}, "tty": bool, "stdin": bool, "rows": n, "cols": n}
std::string renderExecRequest(const ShimExecRequest& request);
// InvalidArgument naming the field that is wrong.
Result<ShimExecRequest> parseExecRequest(std::string_view text);

// The length prefix and the frame, as one write on the socket.
std::string encodeSocketFrame(stream::FrameType type, std::string_view payload);

// Splits a byte stream into frames, whatever the reads' boundaries.
class SocketFrameDecoder {
 public:
  void append(std::string_view bytes);
  // The next complete frame; nullopt while one is incomplete. An error (a frame over
  // kMaxConsoleFrameBytes, an empty or unknown one) leaves the stream unusable.
  Result<std::optional<stream::Frame>> next();

 private:
  std::string buffered_;
  std::size_t consumed_ = 0;  // bytes of buffered_ already decoded, dropped on the next append
};

// The address of the unix socket at `path`, however long: sun_path holds 107 bytes, and a
// longer path (a deep state dir, a long session id) is reached through its directory
// opened O_PATH, as /proc/self/fd/N/NAME. Holds that directory while it lives.
class UnixSocketAddress {
 public:
  static Result<UnixSocketAddress> of(const std::filesystem::path& path);
  UnixSocketAddress(UnixSocketAddress&& other) noexcept;
  UnixSocketAddress& operator=(UnixSocketAddress&&) = delete;
  ~UnixSocketAddress();
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&address_); }
  socklen_t size() const { return sizeof address_; }
  // What bind() and unlink() are given.
  const char* path() const { return address_.sun_path; }

 private:
  UnixSocketAddress() = default;
  sockaddr_un address_{};
  int dirFd_ = -1;
};

}  // namespace bai::core
