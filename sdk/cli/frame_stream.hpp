// What the CLI's forwarders (console_forwarder, service_tunnel) need of an interactive
// stream: libbai-client's SessionStream in `bai`, an in-memory one in the unit tests.
#pragma once

#include <bai/client.hpp>

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

namespace bai::cli {

// The calls of client::SessionStream, with its threading: one thread receives while
// another sends, and close() from any thread ends both.
class FrameStream {
 public:
  virtual ~FrameStream() = default;
  virtual client::StreamEvent receive() = 0;
  virtual bool sendStdin(std::string_view bytes) = 0;
  virtual bool closeStdin() = 0;
  virtual bool resize(client::TerminalSize size) = 0;
  virtual void close() = 0;
};

class SessionFrameStream : public FrameStream {
 public:
  explicit SessionFrameStream(client::SessionStream stream) : stream_(std::move(stream)) {}
  client::StreamEvent receive() override { return stream_.receive(); }
  bool sendStdin(std::string_view bytes) override { return stream_.sendStdin(bytes); }
  bool closeStdin() override { return stream_.closeStdin(); }
  bool resize(client::TerminalSize size) override { return stream_.resize(size); }
  void close() override { stream_.close(); }

 private:
  client::SessionStream stream_;
};

}  // namespace bai::cli
