// A small HTTP/1.1 server (Boost.Asio + Beast, kept out of this header) for the agent's
// RPC and the manager's API: keep-alive, bounded bodies, one io_context per thread fed by
// one acceptor (no SO_REUSEPORT: a second daemon on the same port fails to bind).
// Internal to bai.
#pragma once

#include "log_sink.hpp"
#include "websocket.hpp"

#include <bai/result.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <optional>
#include <variant>

namespace bai::http {

struct Request {
  std::string method;  // "GET"
  std::string target;  // "/v1/sessions/s1?wait=5"
  std::string path;    // "/v1/sessions/s1"
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string peer;  // "127.0.0.1:53122"

  std::string header(const std::string& lowerName) const;
};

// A byte range of an open file, sent as a response's body without being read whole: the
// server writes it in pieces. Owns the descriptor (closed when the last holder drops it).
struct FileBody {
  int fd = -1;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;

  FileBody(int ownedFd, std::uint64_t from, std::uint64_t count) : fd(ownedFd), offset(from), length(count) {}
  ~FileBody();
  FileBody(const FileBody&) = delete;
  FileBody& operator=(const FileBody&) = delete;
};

struct Response {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;
  // When set, the body instead of `body`: Content-Length is its length.
  std::shared_ptr<FileBody> file = {};
  // Set by a handler to accept a WebSocket upgrade (a request ws::isUpgradeRequest
  // holds for; on any other it answers 426): the server answers 101 and hands the
  // connection over, on its own thread; status and body are then unused.
  using OnUpgrade = std::function<void(std::shared_ptr<ws::WebSocket>)>;
  OnUpgrade upgrade = {};
  ws::Options upgradeOptions = {};

  static Response acceptUpgrade(OnUpgrade onOpen, ws::Options options = {});
};

using Handler = std::function<Response(const Request&)>;

// A request's body taken as it arrives rather than whole (large uploads go to disk as they
// come, in memory a piece at a time).
struct BodyStream {
  // Each piece in order; a Response ends the request with it, the rest of the body unread
  // (the connection then closes).
  std::function<std::optional<Response>(std::string_view piece)> write;
  // After the last piece: the answer.
  std::function<Response()> finish;
};
// Sees a request's head (its body still unread, `body` empty) when it has a Content-Length:
// nullopt reads the body whole as usual; a Response answers without reading the body; a
// BodyStream takes it piece by piece. Called on the connection's thread.
using BodyStreamer = std::function<std::optional<std::variant<Response, BodyStream>>(const Request& head)>;

// Answers a request later, from any thread, exactly once (later calls are ignored); the
// connection waits without holding its thread, so a long poll costs no thread. Every
// responder must be called or dropped before the Server is destroyed.
using Responder = std::function<void(Response)>;
using AsyncHandler = std::function<void(Request, Responder)>;

// What the server counts, for the daemons' /metrics. Any thread.
struct ServerCounters {
  std::atomic<std::uint64_t> descriptorsExhausted{0};  // accepts refused by EMFILE or ENFILE
  std::atomic<std::uint64_t> connectionsShed{0};       // idle connections closed to free descriptors
};

// The counters as Prometheus families named `<prefix>_http_...` (e.g. "bai_manager").
std::string serverCountersText(const std::string& prefix, const ServerCounters& counters);

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: an ephemeral port, read back with port()
  int threads = 1;
  std::size_t maxBodyBytes = 1 << 20;
  std::string tlsCertificateFile;  // both set: HTTPS
  std::string tlsKeyFile;
  LogSink log = {};  // running out of descriptors is said here, once per episode
  std::shared_ptr<ServerCounters> counters = {};  // shared with whoever renders them; made when empty
  BodyStreamer streamer = {};  // empty: every body is read whole (at most maxBodyBytes)
};

class Server {
 public:
  Server(ServerOptions options, Handler handler);
  Server(ServerOptions options, AsyncHandler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving; errors name the address and the reason.
  Result<void> start();
  void stop();
  std::uint16_t port() const;
  const ServerCounters& counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "host:port" -> (host, port); accepts "[::1]:80" and "127.0.0.1:0".
Result<std::pair<std::string, std::uint16_t>> splitHostPort(const std::string& text);

// Decodes %XX and '+' of a query component.
std::string urlDecode(const std::string& text);
// "a=1&b=%20" -> {a: "1", b: " "}: a request's query string, each part URL-decoded.
std::map<std::string, std::string> parseQuery(const std::string& query);

// Well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool isValidUtf8(std::string_view text);

}  // namespace bai::http
