#include "console_forwarder.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

namespace bai::cli {

std::string DetachKeys::feed(std::string_view input) {
  std::string out;
  for (char byte : input) {
    if (detached_) break;
    if (holding_) {
      holding_ = false;
      if (byte == kSecond) {
        detached_ = true;
        break;
      }
      out += kFirst;
    }
    if (byte == kFirst) {
      holding_ = true;
    } else {
      out += byte;
    }
  }
  return out;
}

std::string DetachKeys::flush() {
  if (!holding_ || detached_) return {};
  holding_ = false;
  return std::string(1, kFirst);
}

bool writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

namespace {

// What the input thread tells the receiving one about how the forwarding ended.
enum class InputEnd { Running, Detached, Interrupted };

// Reads the user's input (and signals) and sends it on, until told to stop through
// `stopFd` or the stream refuses more.
class InputPump {
 public:
  InputPump(FrameStream& stream, const ConsoleOptions& options, int stopFd)
      : stream_(stream), options_(options), stopFd_(stopFd) {}

  void run() {
    bool inputOpen = options_.forwardInput;
    std::string buffer(32 * 1024, '\0');
    while (true) {
      pollfd fds[3] = {{stopFd_, POLLIN, 0}, {options_.signalFd, POLLIN, 0}, {inputOpen ? options_.input : -1, POLLIN, 0}};
      if (::poll(fds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents != 0) return;
      if (fds[1].revents != 0 && !handleSignals()) return;
      if (fds[2].revents == 0) continue;
      const ssize_t n = ::read(options_.input, buffer.data(), buffer.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {  // end of input (or an input that cannot be read): the command reads EOF
        inputOpen = false;
        if (!send(keys_.flush()) || !stream_.closeStdin()) return;
        continue;
      }
      std::string_view bytes(buffer.data(), static_cast<std::size_t>(n));
      if (!options_.detachKeys) {
        if (!send(bytes)) return;
        continue;
      }
      if (!send(keys_.feed(bytes))) return;
      if (keys_.detached()) return end(InputEnd::Detached);
    }
  }

  InputEnd ended() const { return ended_.load(); }

 private:
  bool send(std::string_view bytes) { return bytes.empty() || stream_.sendStdin(bytes); }

  // false: a signal that ends the forwarding.
  bool handleSignals() {
    for (int signal : options_.drainSignals ? options_.drainSignals() : std::vector<int>{}) {
      if (signal != SIGWINCH) {
        end(InputEnd::Interrupted);
        return false;
      }
      if (auto size = options_.windowSize ? options_.windowSize() : std::nullopt) stream_.resize(*size);
    }
    return true;
  }

  void end(InputEnd how) {
    ended_ = how;
    stream_.close();  // ends the receive waiting in the other thread
  }

  FrameStream& stream_;
  const ConsoleOptions& options_;
  int stopFd_;
  DetachKeys keys_;
  std::atomic<InputEnd> ended_{InputEnd::Running};
};

ConsoleOutcome outcomeOfClose(const InputPump& input, const client::StreamEvent& closed) {
  if (input.ended() == InputEnd::Detached) return {ConsoleOutcome::Kind::Detached};
  if (input.ended() == InputEnd::Interrupted) return {ConsoleOutcome::Kind::Interrupted};
  std::string why = "the connection closed (" + std::to_string(closed.closeCode);
  if (!closed.data.empty()) why += ": " + closed.data;
  return {ConsoleOutcome::Kind::Lost, 0, why + ") before the command's exit code came"};
}

}  // namespace

ConsoleOutcome forwardConsole(FrameStream& stream, const ConsoleOptions& options) {
  int stop[2];
  if (::pipe2(stop, O_CLOEXEC) != 0) {
    stream.close();
    return {ConsoleOutcome::Kind::Failed, 0, std::string("cannot create a pipe: ") + std::strerror(errno)};
  }
  InputPump input(stream, options, stop[0]);
  std::thread inputThread([&input] { input.run(); });

  ConsoleOutcome outcome;
  for (bool done = false; !done;) {
    client::StreamEvent event = stream.receive();
    switch (event.kind) {
      case client::StreamEvent::Kind::Stdout:
      case client::StreamEvent::Kind::Stderr: {
        const int fd = event.kind == client::StreamEvent::Kind::Stdout ? options.output : options.errors;
        if (!writeAll(fd, event.data)) {
          outcome = {ConsoleOutcome::Kind::Failed, 0, std::string("cannot write the output: ") + std::strerror(errno)};
          done = true;
        }
        break;
      }
      case client::StreamEvent::Kind::Exit:
        outcome = {ConsoleOutcome::Kind::Exited, event.exitCode};
        done = true;
        break;
      case client::StreamEvent::Kind::Error:
        outcome = {ConsoleOutcome::Kind::Failed, 0, event.data};
        done = true;
        break;
      case client::StreamEvent::Kind::Closed:
        outcome = outcomeOfClose(input, event);
        done = true;
        break;
      case client::StreamEvent::Kind::Eof:  // the output ended; the exit code follows
      case client::StreamEvent::Kind::TimedOut:
        break;
    }
  }
  stream.close();  // unblocks a send waiting on back-pressure
  [[maybe_unused]] const ssize_t written = ::write(stop[1], "x", 1);
  inputThread.join();
  ::close(stop[0]);
  ::close(stop[1]);
  return outcome;
}

}  // namespace bai::cli
