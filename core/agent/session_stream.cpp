#include "agent/session_stream.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

namespace bai::core {
namespace {

// Large enough that a bulk transfer is few messages, small enough for the default
// max-frame-bytes (1 MiB) of the manager that reads them.
constexpr std::size_t kReadChunk = 512 * 1024;

class TcpStream final : public SessionStream {
 public:
  explicit TcpStream(int fd) : fd_(fd) {}
  ~TcpStream() override { ::close(fd_); }

  std::optional<stream::Frame> read() override {
    if (ended_) return std::nullopt;
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer_.get(), kReadChunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) return stream::Frame{stream::FrameType::Stdout, std::string(buffer_.get(), static_cast<std::size_t>(n))};
      ended_ = true;
      if (n == 0 && !closed_) return stream::Frame{stream::FrameType::Eof, ""};  // the service half-closed
      return std::nullopt;
    }
  }

  Result<void> write(const stream::Frame& frame) override {
    if (frame.type == stream::FrameType::Eof) {
      ::shutdown(fd_, SHUT_WR);
      return {};
    }
    if (frame.type != stream::FrameType::Stdin) return {};  // a tunnel has no terminal
    std::string_view bytes = frame.payload;
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail(ErrorCode::Internal, std::string("the service's connection: ") + std::strerror(errno));
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
  }

  void close() override {
    closed_ = true;
    ::shutdown(fd_, SHUT_RDWR);
  }

 private:
  int fd_;
  std::unique_ptr<char[]> buffer_ = std::make_unique<char[]>(kReadChunk);  // the reader's, reused
  bool ended_ = false;  // the reader's
  std::atomic<bool> closed_{false};
};

}  // namespace

Result<std::unique_ptr<SessionStream>> connectTcpStream(const std::string& host, std::uint16_t port,
                                                        std::chrono::milliseconds timeout) {
  const std::string where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    return fail(ErrorCode::InvalidArgument, "service address " + where + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(ErrorCode::Internal, std::string("socket: ") + std::strerror(errno));
  auto failWith = [&](int error) -> Result<std::unique_ptr<SessionStream>> {
    ::close(fd);
    return fail(ErrorCode::Internal, "connecting to " + where + ": " + std::strerror(error) +
                          (error == ECONNREFUSED ? " (nothing listens there yet)" : ""));
  };
  if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return failWith(errno);
    pollfd waiting{fd, POLLOUT, 0};
    const int ready = ::poll(&waiting, 1, static_cast<int>(timeout.count()));
    if (ready == 0) return failWith(ETIMEDOUT);
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (ready < 0 || error != 0) return failWith(ready < 0 ? errno : error);
  }
  // Blocking from here: each direction has a thread of its own.
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return std::unique_ptr<SessionStream>(std::make_unique<TcpStream>(fd));
}

}  // namespace bai::core
