// WebSockets (RFC 6455, Boost.Beast kept out of this header) for bai's interactive
// streams: the server side that http::Server hands an upgraded connection to, and the
// client side that the CLI, libbai-client and the manager (towards agents) open.
//
// Back-pressure is the caller's: a WebSocket reads its next message only after the
// previous one was handed on (readNext), and says when a sent message is written, so a
// relay that sends message N before reading N+1 buffers at most one message each way.
// Keep-alive pings go out after a quiet half of the idle timeout; a peer that answers
// nothing within it is closed. Internal to bai.
#pragma once

#include <bai/result.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace bai::ws {

struct Options {
  std::size_t maxMessageBytes = 1u << 20;  // a larger message closes with 1009 (too big)
  std::chrono::seconds idleTimeout{60};    // ping after half of it quiet; close after all of it
  std::chrono::seconds handshakeTimeout{10};
};

// Why a WebSocket closed: the peer's close frame, or what failed (code 1006, no frame).
struct CloseInfo {
  std::uint16_t code = 1000;
  std::string reason;
};

// Close codes bai uses beyond RFC 6455's 1000 (normal) and 1009 (too big).
constexpr std::uint16_t kCloseNormal = 1000;
constexpr std::uint16_t kCloseGoingAway = 1001;
constexpr std::uint16_t kCloseProtocolError = 1002;
constexpr std::uint16_t kCloseTooBig = 1009;
constexpr std::uint16_t kCloseAbnormal = 1006;  // never sent: the connection just ended
constexpr std::uint16_t kCloseInternalError = 1011;
constexpr std::uint16_t kClosePolicy = 1008;  // a limit, or a frame the receiver refuses

// One open WebSocket, either side. Its I/O runs on one thread (the server's connection
// thread, or the client connector's); every method may be called from any thread.
class WebSocket : public std::enable_shared_from_this<WebSocket> {
 public:
  // Called on the I/O thread with each binary message; the next read waits for readNext().
  using OnMessage = std::function<void(std::string message)>;
  // Called once, on the I/O thread, when the socket is closed either way.
  using OnClose = std::function<void(const CloseInfo&)>;
  // Called on the I/O thread when a sent message is written (true) or can never be (false).
  using OnWritten = std::function<void(bool written)>;

  virtual ~WebSocket() = default;

  // Starts reading: the first message is read at once. Call exactly once.
  virtual void start(OnMessage onMessage, OnClose onClose) = 0;
  // Reads the next message; call once per message delivered.
  virtual void readNext() = 0;
  // Queues one binary message behind those not yet written.
  virtual void send(std::string message, OnWritten written = {}) = 0;
  // Sends a close frame after the queued messages; onClose follows.
  virtual void close(std::uint16_t code, std::string reason) = 0;
  // Bytes queued and not yet written (what a relay bounds).
  virtual std::size_t queuedBytes() const = 0;
  // "127.0.0.1:53122": the peer, for logs.
  virtual std::string peer() const = 0;
};

// A WebSocket for plain threads: receive() blocks for the next message and send() until
// it is written, so a thread that pumps a byte stream into it is paced by the peer.
class BlockingWebSocket {
 public:
  explicit BlockingWebSocket(std::shared_ptr<WebSocket> socket);
  ~BlockingWebSocket();  // closes the socket (1000) if still open
  BlockingWebSocket(const BlockingWebSocket&) = delete;
  BlockingWebSocket& operator=(const BlockingWebSocket&) = delete;

  // The next message; nullopt once the socket is closed (closeInfo() says why). With a
  // timeout, also nullopt when it runs out (closed() says which).
  std::optional<std::string> receive(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // false: closed before the message was written.
  bool send(std::string message);
  void close(std::uint16_t code = kCloseNormal, std::string reason = {});
  // Stops waiting for the socket: a receive() or send() blocked in another thread returns
  // at once, as if it closed. For an owner whose I/O thread may already be gone.
  void abandon();
  bool closed() const;
  CloseInfo closeInfo() const;
  WebSocket& socket() { return *socket_; }

 private:
  struct State;
  std::shared_ptr<WebSocket> socket_;
  std::shared_ptr<State> state_;
};

// Where and how a client connects: "ws://host:port/path?query" or "wss://..." (also
// http:// and https://, read as ws:// and wss://).
struct ConnectRequest {
  std::string url;
  std::map<std::string, std::string> headers = {};  // e.g. Authorization, X-BAI-Date
  Options options{};
  std::chrono::milliseconds connectTimeout{5000};  // TCP, TLS and the upgrade together
  bool verifyTls = true;
  std::string caFile = {};  // PEM bundle instead of the system's
};

// A refused upgrade: the server's answer, so a caller can show its status and error.
struct Declined {
  int status = 0;
  std::string body;
};

struct ConnectOutcome {
  std::shared_ptr<WebSocket> socket;  // set when the upgrade succeeded
  std::optional<Declined> declined;   // set when the server answered something else
};

// Owns the I/O thread of client WebSockets. Destroying it closes those still open
// (their onClose runs) and joins the thread.
class Connector {
 public:
  Connector();
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  using OnConnected = std::function<void(Result<ConnectOutcome>)>;
  // Connects without blocking the caller; `done` runs on the I/O thread. An error is a
  // failed exchange (unreachable, timed out, TLS), naming the URL but no header value.
  void connect(ConnectRequest request, OnConnected done);
  // The same, waiting for the outcome.
  Result<ConnectOutcome> connect(ConnectRequest request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether a server request asks for a WebSocket (Connection: upgrade, Upgrade: websocket).
bool isUpgradeRequest(const std::map<std::string, std::string>& lowerCaseHeaders);

}  // namespace bai::ws
