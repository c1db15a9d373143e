// HTTP/1.1 to a container engine over its unix socket, one connection per call: the
// plain calls read a bounded body, the streaming ones (attach, logs, pull, wait) read it
// in pieces as it comes. Failures to reach the engine or a connection that breaks are
// Internal errors whose message starts with "engine unreachable: ".
#pragma once

#include <bai/result.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace bai::core {

// A JSON answer larger than this is refused, whatever the engine says its length is.
inline constexpr std::size_t kMaxEngineBodyBytes = std::size_t{16} << 20;

struct EngineRequest {
  std::string method;   // "GET", "POST", "DELETE"
  std::string target;   // "/v1.41/containers/create?name=bai-x"
  std::string body;     // sent as application/json when not empty
  bool upgrade = false;  // Connection: Upgrade, Upgrade: tcp (attach hijacks the connection)
};

struct EngineResponse {
  unsigned status = 0;
  std::string body;  // empty when the body is read in pieces
  std::string libpodApiVersion;  // the Libpod-Api-Version header: only Podman sends it
};

using EngineClock = std::chrono::steady_clock;
// The time a step must end by; nullopt: wait as long as it takes (a followed log).
using EngineDeadline = std::optional<EngineClock::time_point>;
// Takes a piece of a body or stream as it arrives; an error stops the reading.
using EnginePieceSink = std::function<Result<void>(std::string_view)>;

// One connection for one call. Only close() may be called from another thread.
class EngineConnection {
 public:
  explicit EngineConnection(std::filesystem::path socket);
  ~EngineConnection();
  EngineConnection(const EngineConnection&) = delete;
  EngineConnection& operator=(const EngineConnection&) = delete;

  // Connects, sends `request` and reads the status line and headers.
  Result<EngineResponse> begin(const EngineRequest& request, EngineDeadline deadline);
  // The body (chunked or not) in pieces, at most `limit` bytes in all (nullopt: no bound,
  // the sink bounds what it keeps).
  Result<void> readBody(const EnginePieceSink& sink, std::optional<std::size_t> limit, EngineDeadline deadline);
  // After 101 Switching Protocols: the raw stream until the engine closes it, starting
  // with the bytes that came along with the headers.
  Result<void> readUpgraded(const EnginePieceSink& sink);
  // Ends the reading of another thread: its read returns an error soon after.
  void close();
  // After begin(): a descriptor of its own (the caller closes it) on the same socket, so
  // that another thread writes a hijacked call's stdin while this connection reads.
  Result<int> duplicateSocket();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A plain call: the whole body, bounded by kMaxEngineBodyBytes, within `timeout`.
Result<EngineResponse> engineCall(const std::filesystem::path& socket, const EngineRequest& request,
                                  std::chrono::milliseconds timeout);
// The same on a connection another thread may close().
Result<EngineResponse> engineCall(EngineConnection& connection, const EngineRequest& request,
                                  std::chrono::milliseconds timeout);

// "engine unreachable: <reason>", as isUnreachable() recognises it.
Error engineUnreachable(std::string reason);

}  // namespace bai::core
