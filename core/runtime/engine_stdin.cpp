#include "runtime/engine_stdin.hpp"

#include "runtime/engine_http.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

namespace bai::core {
namespace {

std::string systemError(const char* step) { return std::string(step) + ": " + std::strerror(errno); }

class HijackedStdin final : public EngineStream {
 public:
  HijackedStdin(int socketHandle, int wakeHandle, std::function<void()> closeConnection)
      : socket_(socketHandle), wake_(wakeHandle), closeConnection_(std::move(closeConnection)) {}

  ~HijackedStdin() override {
    close();
    ::close(socket_);
    ::close(wake_);
  }

  HijackedStdin(const HijackedStdin&) = delete;
  HijackedStdin& operator=(const HijackedStdin&) = delete;

  Result<void> write(std::string_view bytes) override {
    const std::lock_guard lock(writeMutex_);
    while (!bytes.empty()) {
      if (closed_.load()) return Failure{engineUnreachable("writing stdin: the stream was closed by the client")};
      if (writeEnded_) return fail(ErrorCode::Conflict, "writing stdin: stdin was already ended");
      // Non-blocking, then wait in poll(): close() can wake the wait, not a blocked send().
      const ssize_t sent = ::send(socket_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent > 0) {
        bytes.remove_prefix(static_cast<std::size_t>(sent));
        continue;
      }
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd waits[2] = {{socket_, POLLOUT, 0}, {wake_, POLLIN, 0}};
        if (::poll(waits, 2, -1) < 0 && errno != EINTR) return Failure{engineUnreachable(systemError("waiting to write stdin"))};
        continue;
      }
      return Failure{engineUnreachable(systemError("writing stdin"))};
    }
    return {};
  }

  Result<void> closeWrite() override {
    const std::lock_guard lock(writeMutex_);
    if (closed_.load()) return Failure{engineUnreachable("ending stdin: the stream was closed by the client")};
    if (writeEnded_) return {};
    if (::shutdown(socket_, SHUT_WR) != 0) return Failure{engineUnreachable(systemError("ending stdin"))};
    writeEnded_ = true;
    return {};
  }

  void close() override {
    if (closed_.exchange(true)) return;
    closeConnection_();  // first: the reader then reports a close by the client, not an end
    ::shutdown(socket_, SHUT_RDWR);
    const std::uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof one);
  }

 private:
  const int socket_;
  const int wake_;  // an eventfd: close() wakes a write() waiting in poll()
  const std::function<void()> closeConnection_;
  std::atomic<bool> closed_{false};
  std::mutex writeMutex_;    // one write or closeWrite at a time; close() does not take it
  bool writeEnded_ = false;  // guarded by writeMutex_
};

}  // namespace

Result<std::unique_ptr<EngineStream>> makeHijackedStdin(int socketHandle, std::function<void()> closeConnection) {
  const int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    const std::string why = systemError("creating the stdin wake-up");
    ::close(socketHandle);
    return fail(ErrorCode::Internal, why);
  }
  return std::unique_ptr<EngineStream>(std::make_unique<HijackedStdin>(socketHandle, wake, std::move(closeConnection)));
}

}  // namespace bai::core
