#include "service_tunnel.hpp"

#include "console_forwarder.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

namespace bai::cli {

Result<BindAddress> parseBindAddress(const std::string& text) {
  const std::string quoted = "--bind '" + text + "': ";
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) return fail(ErrorCode::InvalidArgument, quoted + "expected HOST:PORT (e.g. 127.0.0.1:8080)");
  BindAddress address{text.substr(0, colon), 0};
  if (address.host.size() >= 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);
  } else if (address.host.find(':') != std::string::npos) {
    return fail(ErrorCode::InvalidArgument, quoted + "write an IPv6 address in brackets: [::1]:8080");
  }
  if (address.host.empty()) return fail(ErrorCode::InvalidArgument, quoted + "the host is missing (e.g. 127.0.0.1:8080)");
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
    return fail(ErrorCode::InvalidArgument, quoted + "the port must be 0 to 65535 (0: any free port)");
  }
  address.port = static_cast<std::uint16_t>(std::stoul(port));
  return address;
}

std::string pipeConnection(int socket, FrameStream& stream) {
  // Upstream on its own thread: the socket's bytes to the stream, then Eof.
  std::thread upstream([socket, &stream] {
    std::string buffer(64 * 1024, '\0');
    while (true) {
      const ssize_t n = ::recv(socket, buffer.data(), buffer.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;  // reset, or shut down by the downstream side: nothing more to send
      if (n == 0) {
        stream.closeStdin();
        return;
      }
      if (!stream.sendStdin(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) return;
    }
  });
  std::string why;
  for (bool done = false; !done;) {
    client::StreamEvent event = stream.receive();
    switch (event.kind) {
      case client::StreamEvent::Kind::Stdout:
      case client::StreamEvent::Kind::Stderr:
        if (!writeAll(socket, event.data)) {
          why = std::string("the local connection closed: ") + std::strerror(errno);
          done = true;
        }
        break;
      case client::StreamEvent::Kind::Eof:  // the service is done sending
        ::shutdown(socket, SHUT_WR);
        break;
      case client::StreamEvent::Kind::Error:
        why = event.data;
        done = true;
        break;
      case client::StreamEvent::Kind::Exit:
      case client::StreamEvent::Kind::Closed:
        done = true;
        break;
      case client::StreamEvent::Kind::TimedOut:
        break;
    }
  }
  // Both ways are over: unblock the upstream reader, and a send held by back-pressure.
  ::shutdown(socket, SHUT_RDWR);
  stream.close();
  upstream.join();
  return why;
}

// ---- The listener --------------------------------------------------------------------

Result<std::unique_ptr<TunnelListener>> TunnelListener::open(const BindAddress& address) {
  const std::string where = address.host + ":" + std::to_string(address.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int error = ::getaddrinfo(address.host.c_str(), std::to_string(address.port).c_str(), &hints, &found); error != 0) {
    return fail(ErrorCode::InvalidArgument, "cannot listen on " + where + ": " + ::gai_strerror(error));
  }
  std::string why = "no address";
  for (addrinfo* candidate = found; candidate != nullptr; candidate = candidate->ai_next) {
    const int fd = ::socket(candidate->ai_family, candidate->ai_socktype | SOCK_CLOEXEC, candidate->ai_protocol);
    if (fd < 0) continue;
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd, candidate->ai_addr, candidate->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
      sockaddr_storage bound{};
      socklen_t length = sizeof bound;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
      const std::uint16_t port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                                  : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      ::freeaddrinfo(found);
      return std::unique_ptr<TunnelListener>(new TunnelListener(fd, address.host, port));
    }
    why = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return fail(ErrorCode::InvalidArgument, "cannot listen on " + where + ": " + why);
}

TunnelListener::~TunnelListener() { ::close(fd_); }

std::string TunnelListener::url() const {
  const std::string host = host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
  return "http://" + host + ":" + std::to_string(port_);
}

bool endsTheTunnel(const client::ApiError& error) {
  return error.status == 401 || error.status == 403 || error.status == 404 || error.status == 409;
}

namespace {

// One accepted connection, piped on its own thread.
struct Connection {
  int socket = -1;
  std::thread thread;
  std::atomic<bool> finished{false};
  std::mutex mutex;                      // guards `stream`, which the thread opens
  std::unique_ptr<FrameStream> stream;
  bool stopping = false;                 // under `mutex`: serve() is closing everything
};

}  // namespace

TunnelEnd TunnelListener::serve(const Opener& open, int stopFd, std::ostream& log) {
  std::list<Connection> connections;
  std::mutex endMutex;  // guards `end`, set by the first connection refused for good
  std::optional<client::ApiError> refusal;
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) return {};
  std::mutex logMutex;

  auto pipeOne = [&](Connection& connection) {
    auto opened = open();
    if (!opened) {
      ::shutdown(connection.socket, SHUT_RDWR);  // the user sees the end at once
      const bool fatal = endsTheTunnel(opened.error());
      {
        std::lock_guard<std::mutex> lock(logMutex);
        log << "bai: a connection to the service was refused: " << opened.error().message() << " [" << opened.error().type
            << (opened.error().status ? ", HTTP " + std::to_string(opened.error().status) : "") << "]\n" << std::flush;
      }
      if (fatal) {
        std::lock_guard<std::mutex> lock(endMutex);
        if (!refusal) refusal = opened.error();
        [[maybe_unused]] const ssize_t written = ::write(wake[1], "x", 1);
      }
      return;
    }
    FrameStream* stream = nullptr;
    {
      std::lock_guard<std::mutex> lock(connection.mutex);
      connection.stream = std::move(*opened);
      stream = connection.stream.get();
      if (connection.stopping) return;
    }
    if (std::string why = pipeConnection(connection.socket, *stream); !why.empty()) {
      std::lock_guard<std::mutex> lock(logMutex);
      log << "bai: a connection to the service ended: " << why << "\n" << std::flush;
    }
  };

  auto reapFinished = [&connections] {
    for (auto it = connections.begin(); it != connections.end();) {
      if (!it->finished) {
        ++it;
        continue;
      }
      it->thread.join();
      ::close(it->socket);
      it = connections.erase(it);
    }
  };

  while (true) {
    pollfd fds[3] = {{fd_, POLLIN, 0}, {stopFd, POLLIN, 0}, {wake[0], POLLIN, 0}};
    if (::poll(fds, 3, 1000) < 0 && errno != EINTR) break;
    reapFinished();
    if (fds[1].revents != 0 || fds[2].revents != 0) break;
    if (fds[0].revents == 0) continue;
    const int socket = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (socket < 0) continue;  // the peer gave up before the accept, or out of descriptors for now
    const int on = 1;
    ::setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    Connection& connection = connections.emplace_back();
    connection.socket = socket;
    connection.thread = std::thread([&pipeOne, &connection] {
      pipeOne(connection);
      connection.finished = true;
    });
  }
  for (Connection& connection : connections) {
    std::lock_guard<std::mutex> lock(connection.mutex);
    connection.stopping = true;
    ::shutdown(connection.socket, SHUT_RDWR);
    if (connection.stream) connection.stream->close();
  }
  for (Connection& connection : connections) {
    connection.thread.join();
    ::close(connection.socket);
  }
  ::close(wake[0]);
  ::close(wake[1]);
  std::lock_guard<std::mutex> lock(endMutex);
  if (refusal) return {TunnelEnd::Kind::Refused, *refusal};
  return {TunnelEnd::Kind::Stopped};
}

}  // namespace bai::cli
