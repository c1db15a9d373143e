// libbai-client's interactive streams: SessionStream over a client WebSocket to the
// manager (websocket.hpp), carrying the frames of stream_frames.hpp, and the Client calls
// that open one with a signed upgrade request.
#include <bai/client.hpp>
#include <bai/request_signing.hpp>

#include "api_reply.hpp"
#include "http_client.hpp"
#include "stream_frames.hpp"
#include "websocket.hpp"

#include <nlohmann/json.hpp>

#include <atomic>

namespace bai::client {
namespace {

// Stdin is cut into frames of this size, well under any manager's max-frame-bytes.
constexpr std::size_t kStdinFrameBytes = 64 * 1024;
// What the client accepts from the manager in one message: the manager's frames are
// bounded by its own max-frame-bytes (1 MiB by default), which an admin may raise.
constexpr std::size_t kMaxReceivedFrameBytes = 16u << 20;

stream::TerminalSize wireSize(TerminalSize size) { return {size.rows, size.cols}; }

std::string sizeQuery(TerminalSize size) {
  if (size.rows == 0 || size.cols == 0) return {};
  return "rows=" + std::to_string(size.rows) + "&cols=" + std::to_string(size.cols);
}

StreamEvent errorEvent(std::string why) { return StreamEvent{StreamEvent::Kind::Error, std::move(why)}; }

// An open WebSocket to the manager. The connector owns the socket's I/O thread, so it
// is destroyed after the socket (members are destroyed in reverse order).
struct StreamConnection {
  std::unique_ptr<ws::Connector> connector;
  std::unique_ptr<ws::BlockingWebSocket> socket;
};

}  // namespace

struct SessionStream::Impl : StreamConnection {
  explicit Impl(StreamConnection connection) : StreamConnection(std::move(connection)) {}
  // Set once Exit, Error or Closed was delivered: the stream is over for the reader.
  std::atomic<bool> ended{false};

  bool send(stream::FrameType type, std::string_view payload) { return socket->send(stream::encodeFrame(type, payload)); }

  // The end of the stream as the reader sees it; the socket is closed with `code` so
  // the manager knows why (a frame this client refuses: 1002).
  StreamEvent end(StreamEvent event, std::optional<std::uint16_t> code = std::nullopt) {
    ended = true;
    if (code) socket->close(*code, event.data.substr(0, 120));
    return event;
  }
};

SessionStream::SessionStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SessionStream::SessionStream(SessionStream&&) noexcept = default;
SessionStream& SessionStream::operator=(SessionStream&&) noexcept = default;
SessionStream::~SessionStream() {
  if (impl_) impl_->socket.reset();  // closes (1000) before the connector's thread stops
}

StreamEvent SessionStream::receive(std::optional<std::chrono::milliseconds> timeout) {
  if (!impl_ || impl_->ended) return StreamEvent{StreamEvent::Kind::Closed, "the stream has ended", 0, ws::kCloseNormal};
  std::optional<std::string> message = impl_->socket->receive(timeout);
  if (!message) {
    if (!impl_->socket->closed()) return StreamEvent{StreamEvent::Kind::TimedOut};
    const ws::CloseInfo info = impl_->socket->closeInfo();
    return impl_->end(StreamEvent{StreamEvent::Kind::Closed, info.reason, 0, info.code});
  }
  std::optional<stream::Frame> frame = stream::decodeFrame(*message);
  if (!frame) {
    const std::string type = message->empty() ? "an empty message" : "frame type " + std::to_string(static_cast<unsigned char>((*message)[0]));
    return impl_->end(errorEvent("the manager sent " + type + ", which this client does not know"), ws::kCloseProtocolError);
  }
  switch (frame->type) {
    case stream::FrameType::Stdout:
      return StreamEvent{StreamEvent::Kind::Stdout, std::move(frame->payload)};
    case stream::FrameType::Stderr:
      return StreamEvent{StreamEvent::Kind::Stderr, std::move(frame->payload)};
    case stream::FrameType::Eof:
      return StreamEvent{StreamEvent::Kind::Eof};
    case stream::FrameType::Exit:
      if (std::optional<int> code = stream::parseExit(frame->payload)) {
        return impl_->end(StreamEvent{StreamEvent::Kind::Exit, "", *code});
      }
      return impl_->end(errorEvent("the manager sent an Exit frame without an exit code ('" + frame->payload.substr(0, 16) + "')"),
                        ws::kCloseProtocolError);
    case stream::FrameType::Error:
      return impl_->end(errorEvent(std::move(frame->payload)));
    default:  // Stdin, Resize, Exec, Attach: only ever sent towards a session
      return impl_->end(errorEvent("the manager sent a frame of type " + std::to_string(static_cast<int>(frame->type)) +
                                   ", which only a client sends"),
                        ws::kCloseProtocolError);
  }
}

bool SessionStream::sendStdin(std::string_view bytes) {
  if (!impl_) return false;
  do {
    const std::string_view chunk = bytes.substr(0, kStdinFrameBytes);
    if (!impl_->send(stream::FrameType::Stdin, chunk)) return false;
    bytes.remove_prefix(chunk.size());
  } while (!bytes.empty());
  return true;
}

bool SessionStream::closeStdin() { return impl_ && impl_->send(stream::FrameType::Eof, {}); }

bool SessionStream::resize(TerminalSize size) {
  if (!impl_ || size.rows == 0 || size.cols == 0) return false;
  return impl_->send(stream::FrameType::Resize, stream::resizePayload(wireSize(size)));
}

void SessionStream::close() {
  if (impl_) impl_->socket->close(ws::kCloseNormal, {});
}

// ---- Opening streams --------------------------------------------------------------------

namespace {

// Opens the WebSocket at `target` (path and query, as signed) on the manager.
ClientResult<StreamConnection> openStream(const Config& config, const std::string& target) {
  ws::ConnectRequest request;
  request.url = config.endpoint + target;
  // Signed like any GET: a new date and nonce for each upgrade.
  request.headers = auth::signRequest({config.accessKey, config.secretKey}, "GET", target, "", std::chrono::system_clock::now());
  request.options.maxMessageBytes = kMaxReceivedFrameBytes;
  request.connectTimeout = config.timeout;
  request.caFile = config.caFile;
  StreamConnection connection{std::make_unique<ws::Connector>(), nullptr};
  Result<ws::ConnectOutcome> outcome = connection.connector->connect(std::move(request));
  if (!outcome) return Failure{ApiError{0, "unreachable", "Cannot reach the manager", outcome.error().message}};
  if (outcome->declined) return Failure{client_internal::errorFromReply(outcome->declined->status, outcome->declined->body)};
  if (!outcome->socket) {
    return Failure{ApiError{0, "invalid-reply", "Unexpected answer from the manager", "neither a WebSocket nor an error"}};
  }
  connection.socket = std::make_unique<ws::BlockingWebSocket>(std::move(outcome->socket));
  return connection;
}

std::string sessionPath(const std::string& id) { return "/v1/sessions/" + http::urlEncode(id); }

}  // namespace

ClientResult<SessionStream> Client::attachSession(const std::string& id, TerminalSize size) const {
  const std::string query = sizeQuery(size);
  auto connection = openStream(config_, sessionPath(id) + "/attach" + (query.empty() ? "" : "?" + query));
  if (!connection) return Failure{connection.error()};
  return SessionStream(std::make_unique<SessionStream::Impl>(std::move(*connection)));
}

ClientResult<SessionStream> Client::execInSession(const std::string& id, const ExecOptions& options) const {
  if (options.command.empty()) {
    return Failure{ApiError{0, "invalid-request", "Invalid exec", "the command to run is empty"}};
  }
  std::string target = sessionPath(id) + "/exec?command=" + http::urlEncode(nlohmann::json(options.command).dump());
  if (options.tty) target += "&tty=1";
  if (options.tty || options.openStdin) target += "&stdin=1";
  if (const std::string size = sizeQuery(options.size); options.tty && !size.empty()) target += "&" + size;
  auto connection = openStream(config_, target);
  if (!connection) return Failure{connection.error()};
  return SessionStream(std::make_unique<SessionStream::Impl>(std::move(*connection)));
}

ClientResult<SessionStream> Client::connectService(const std::string& id, const std::string& name) const {
  if (name.empty()) return Failure{ApiError{0, "invalid-request", "Invalid service", "the service's name is empty"}};
  auto connection = openStream(config_, sessionPath(id) + "/services/" + http::urlEncode(name) + "/connect");
  if (!connection) return Failure{connection.error()};
  return SessionStream(std::make_unique<SessionStream::Impl>(std::move(*connection)));
}

}  // namespace bai::client
