#include "runtime/shim_console.hpp"

#include "runtime/atomic_file.hpp"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace bai::core {
namespace {

Result<int> connectTo(const std::filesystem::path& socketPath) {
  const std::string path = socketPath.string();
  auto address = UnixSocketAddress::of(socketPath);
  if (!address) {
    if (address.error().code == ErrorCode::NotFound) {
      return fail(ErrorCode::NotFound, "no shim serves the session's console, it has ended (" + path + ")");
    }
    return Failure{address.error()};
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(ErrorCode::Internal, describeErrno("socket", errno));
  if (::connect(fd, address->get(), address->size()) != 0) {
    const int error = errno;
    ::close(fd);
    if (error == ENOENT || error == ECONNREFUSED) {
      return fail(ErrorCode::NotFound, "no shim serves the session's console, it has ended (" + path + ")");
    }
    return fail(ErrorCode::Internal, describeErrno("connecting to " + path, error));
  }
  return fd;
}

Result<void> writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t written = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return fail(ErrorCode::Internal, describeErrno("writing to the session's console", errno));
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<ShimConsoleConnection>> ShimConsoleConnection::open(const std::filesystem::path& sessionDir,
                                                                           const stream::Frame& first) {
  Result<int> fd = connectTo(sessionDir / kConsoleSocketName);
  if (!fd.ok()) return Failure{fd.error()};
  std::unique_ptr<ShimConsoleConnection> connection(new ShimConsoleConnection(*fd));
  if (Result<void> sent = connection->write(first); !sent.ok()) return Failure{sent.error()};
  return connection;
}

Result<std::unique_ptr<ShimConsoleConnection>> ShimConsoleConnection::attach(
    const std::filesystem::path& sessionDir, std::optional<stream::TerminalSize> size) {
  return open(sessionDir, stream::Frame{stream::FrameType::Attach, size ? stream::resizePayload(*size) : ""});
}

Result<std::unique_ptr<ShimConsoleConnection>> ShimConsoleConnection::exec(const std::filesystem::path& sessionDir,
                                                                           const ShimExecRequest& request) {
  return open(sessionDir, stream::Frame{stream::FrameType::Exec, renderExecRequest(request)});
}

ShimConsoleConnection::~ShimConsoleConnection() { ::close(fd_); }

Result<std::optional<stream::Frame>> ShimConsoleConnection::read() {
  for (;;) {
    Result<std::optional<stream::Frame>> frame = decoder_.next();
    if (!frame.ok() || frame->has_value()) return frame;
    char buffer[64 * 1024];
    ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == ECONNRESET) return std::optional<stream::Frame>();
    if (got < 0) return fail(ErrorCode::Internal, describeErrno("reading the session's console", errno));
    if (got == 0) return std::optional<stream::Frame>();
    decoder_.append(std::string_view(buffer, static_cast<std::size_t>(got)));
  }
}

Result<void> ShimConsoleConnection::write(const stream::Frame& frame) {
  if (1 + frame.payload.size() > kMaxConsoleFrameBytes) {
    return fail(ErrorCode::OutOfRange, "a frame of " + std::to_string(1 + frame.payload.size()) +
                                           " bytes is over the console's limit of " +
                                           std::to_string(kMaxConsoleFrameBytes));
  }
  return writeAll(fd_, encodeSocketFrame(frame.type, frame.payload));
}

void ShimConsoleConnection::shutdown() { ::shutdown(fd_, SHUT_RDWR); }

}  // namespace bai::core
