// One interactive stream of a session as the agent serves it: the session's console, an
// exec in it, or one TCP connection to one of its services. The runtimes make them; the
// bridge (stream_bridge.hpp) pumps one to and from a WebSocket.
#pragma once

#include "runtime/console_protocol.hpp"
#include "stream_frames.hpp"

#include <bai/result.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace bai::core {

// What an exec runs: the same request for both runtimes.
using ExecRequest = ShimExecRequest;

// Which stream of a session a client asks for.
struct StreamTarget {
  enum class Kind { Console, Exec, Service };
  Kind kind = Kind::Console;
  std::optional<stream::TerminalSize> size{};  // a console's initial size
  ExecRequest exec{};                          // Kind::Exec
  std::string service{};                       // Kind::Service: its name
};

class SessionStream {
 public:
  virtual ~SessionStream() = default;
  // The next frame for the client (Stdout, Stderr, Eof, then Exit or Error); nullopt
  // when the stream ended. Blocks; one thread reads.
  virtual std::optional<stream::Frame> read() = 0;
  // A frame from the client (Stdin, Resize, Eof); an error ends the stream. Another
  // thread than the reader's writes.
  virtual Result<void> write(const stream::Frame& frame) = 0;
  // Ends it from any thread: a blocked read() returns nullopt, a blocked write() fails.
  virtual void close() = 0;
};

// Output handed from a producer (an engine's reader thread) to a stream's reader,
// bounded: push() waits while `capacity` bytes wait, so a slow client slows the producer
// (and so the command) instead of growing the agent.
class FrameQueue {
 public:
  explicit FrameQueue(std::size_t capacity = 256 * 1024) : capacity_(capacity) {}

  // false once closed (the frame is dropped).
  bool push(stream::Frame frame) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return closed_ || bytes_ < capacity_; });
    if (closed_) return false;
    bytes_ += frame.payload.size();
    frames_.push_back(std::move(frame));
    changed_.notify_all();
    return true;
  }
  // The next frame; nullopt once closed and drained.
  std::optional<stream::Frame> pop() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !frames_.empty() || closed_; });
    if (frames_.empty()) return std::nullopt;
    stream::Frame frame = std::move(frames_.front());
    frames_.pop_front();
    bytes_ -= frame.payload.size();
    changed_.notify_all();
    return frame;
  }
  // No more frames: pop() drains what is queued, then nullopt; push() fails.
  void close() {
    const std::lock_guard lock(mutex_);
    closed_ = true;
    changed_.notify_all();
  }
  // Drops what is queued and ends with `last` (an Error: the stream was taken over).
  void finishWith(stream::Frame last) {
    const std::lock_guard lock(mutex_);
    frames_.clear();
    bytes_ = last.payload.size();
    frames_.push_back(std::move(last));
    closed_ = true;
    changed_.notify_all();
  }
  // Drops what is queued as well.
  void abort() {
    const std::lock_guard lock(mutex_);
    closed_ = true;
    frames_.clear();
    bytes_ = 0;
    changed_.notify_all();
  }

 private:
  const std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<stream::Frame> frames_;
  std::size_t bytes_ = 0;
  bool closed_ = false;
};

// A TCP connection to a session's service: Stdin is written to it, what it sends comes
// as Stdout, end of file either way as Eof.
Result<std::unique_ptr<SessionStream>> connectTcpStream(const std::string& host, std::uint16_t port,
                                                        std::chrono::milliseconds timeout);

}  // namespace bai::core
