#include "http_server.hpp"

#include "prometheus_text.hpp"
#include "websocket_beast.hpp"

#include <utility>  // Boost 1.74 Asio with GCC 12 in C++20 needs std::exchange declared first

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <atomic>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <unistd.h>

namespace bai::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr auto kIdleTimeout = std::chrono::seconds(60);
// What a streamed body (ServerOptions::streamer) is read in.
constexpr std::size_t kStreamPieceBytes = 1u << 20;
// After a failed accept: wait, doubling up to the cap, so that a full descriptor table
// (the pending connection stays in the backlog) does not spin the acceptor's thread.
constexpr auto kFirstAcceptBackoff = std::chrono::milliseconds(10);
constexpr auto kLongestAcceptBackoff = std::chrono::milliseconds(500);
constexpr std::size_t kShedPerFailedAccept = 8;
constexpr std::size_t kFilePieceBytes = 1 << 20;

// Connections kept alive and waiting for their next request, oldest first: the ones
// closed when the process runs out of descriptors. Any thread.
class WaitingConnections {
 public:
  using Closer = std::function<void()>;

  std::uint64_t add(Closer close) {
    const std::lock_guard lock(mutex_);
    const std::uint64_t ticket = ++next_;
    waiting_.emplace(ticket, std::move(close));
    return ticket;
  }
  void remove(std::uint64_t ticket) {
    const std::lock_guard lock(mutex_);
    waiting_.erase(ticket);
  }
  // Closes up to `count` of the oldest; how many it closed.
  std::size_t shedOldest(std::size_t count) {
    std::vector<Closer> closers;
    {
      const std::lock_guard lock(mutex_);
      while (closers.size() < count && !waiting_.empty()) {
        closers.push_back(std::move(waiting_.begin()->second));
        waiting_.erase(waiting_.begin());
      }
    }
    for (auto& close : closers) close();
    return closers.size();
  }

 private:
  std::mutex mutex_;
  std::uint64_t next_ = 0;
  std::map<std::uint64_t, Closer> waiting_;  // by ticket: the oldest first
};

bool outOfDescriptors(const beast::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system;
}

// The path and the query's names and values, percent-decoded, are UTF-8 text: handlers
// put them into JSON, which refuses anything else (a 500 once).
bool decodesToUtf8(const Request& request) {
  if (!isValidUtf8(urlDecode(request.path))) return false;
  return std::all_of(request.query.begin(), request.query.end(),
                     [](const auto& pair) { return isValidUtf8(pair.first) && isValidUtf8(pair.second); });
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

std::map<std::string, std::string> parseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(start, end - start);
    const std::size_t eq = pair.find('=');
    if (!pair.empty()) {
      out[urlDecode(pair.substr(0, eq))] = eq == std::string::npos ? "" : urlDecode(pair.substr(eq + 1));
    }
    start = end + 1;
  }
  return out;
}

namespace {

Response plainError(int status, const std::string& type, const std::string& title, const std::string& detail) {
  return Response{status, "application/json",
                  R"({"type":")" + type + R"(","title":")" + title + R"(","detail":")" + detail + R"("})", {}};
}

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, const AsyncHandler& handler, const BodyStreamer& streamer, std::size_t maxBody, std::string peer,
          WaitingConnections& waiting, std::shared_ptr<void> context)
      : stream_(std::move(stream)),
        handler_(handler),
        streamer_(streamer),
        maxBody_(maxBody),
        peer_(std::move(peer)),
        waiting_(waiting),
        context_(std::move(context)) {}
  ~Session() { waiting_.remove(ticket_); }

  void run() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(10));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->read();
                              });
    } else {
      read();
    }
  }

 private:
  void read() {
    parser_.emplace();
    // With a streamer a body's size is judged once its head is read (continueBody). Not
    // boost::none: Beast 1.74 compares a length with an empty optional as larger.
    parser_->body_limit(streamer_ ? std::numeric_limits<std::uint64_t>::max() : maxBody_);
    parser_->header_limit(16 * 1024);
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    // Kept alive after an answer: sheddable. A new connection is not, since its first
    // request may be on its way.
    if (answered_) {
      ticket_ = waiting_.add([weak = this->weak_from_this(), executor = stream_.get_executor()] {
        asio::post(executor, [weak] {
          if (auto self = weak.lock()) self->shed();
        });
      });
    }
    bhttp::async_read_header(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->onRead(ec);
      self->continueBody();
    });
  }

  // A client that sent "Expect: 100-continue" (curl does for bodies over 1 MiB) waits for
  // the interim answer before the body: without it, each such request stalls a second.
  void continueBody() {
    const auto& header = parser_->get();
    const bool expectsContinue = beast::iequals(header[bhttp::field::expect], "100-continue");
    if (streamer_ && parser_->content_length() && !parser_->chunked() && !parser_->is_done()) {
      auto decision = streamer_(requestOf(header));
      if (decision && std::holds_alternative<Response>(*decision)) {
        return respond(std::move(std::get<Response>(*decision)), false);  // the body stays unread
      }
      if (decision) {
        auto stream = std::make_shared<BodyStream>(std::move(std::get<BodyStream>(*decision)));
        if (!expectsContinue) return streamBody(stream, *parser_->content_length());
        static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        asio::async_write(stream_, asio::buffer(kContinue),
                          [self = this->shared_from_this(), stream](beast::error_code ec, std::size_t) {
                            if (ec) return self->close();
                            self->streamBody(stream, *self->parser_->content_length());
                          });
        return;
      }
    }
    const bool fits = !parser_->content_length() || *parser_->content_length() <= maxBody_;
    if (streamer_ && !fits) return onRead(bhttp::error::body_limit);  // the limit the parser was not given
    if (streamer_) parser_->body_limit(maxBody_);  // a chunked body, read whole
    auto readBody = [self = this->shared_from_this()] { self->readBody(); };
    if (!expectsContinue || !fits || parser_->is_done()) return readBody();
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(stream_, asio::buffer(kContinue), [self = this->shared_from_this(), readBody](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      readBody();
    });
  }

  // The request line and headers as a handler sees them (the body is the caller's).
  template <class Header>
  Request requestOf(const Header& message) const {
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    const std::size_t question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = parseQuery(request.target.substr(question + 1));
    for (const auto& field : message) request.headers[lower(std::string(field.name_string()))] = std::string(field.value());
    request.peer = peer_;
    return request;
  }

  // The body to `stream` as it arrives, a piece of at most 1 MiB at a time; then its answer.
  void streamBody(std::shared_ptr<BodyStream> stream, std::uint64_t remaining) {
    if (buffer_.size() > 0 && remaining > 0) {
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(buffer_.size(), remaining));
      const auto* data = static_cast<const char*>(buffer_.data().data());
      auto refused = stream->write(std::string_view(data, take));
      buffer_.consume(take);
      if (refused) return respond(std::move(*refused), false);
      remaining -= take;
    }
    if (remaining == 0) return respond(stream->finish(), parser_->get().keep_alive());
    if (!piece_) piece_ = std::make_shared<std::vector<char>>(kStreamPieceBytes);
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(piece_->size(), remaining));
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    stream_.async_read_some(asio::buffer(piece_->data(), want),
                            [self = this->shared_from_this(), stream, remaining](beast::error_code ec, std::size_t n) {
                              if (ec) return self->close();
                              auto refused = stream->write(std::string_view(self->piece_->data(), n));
                              if (refused) return self->respond(std::move(*refused), false);
                              self->streamBody(stream, remaining - n);
                            });
  }

  void readBody() {
    bhttp::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->onRead(ec);
    });
  }

  // Closes the descriptor now, not after a shutdown handshake: it is needed elsewhere.
  void shed() { beast::get_lowest_layer(stream_).close(); }

  void onRead(beast::error_code ec) {
    waiting_.remove(std::exchange(ticket_, 0));
    if (ec == bhttp::error::body_limit) {
      return respond(plainError(413, "body-too-large", "Request body too large",
                                "the limit is " + std::to_string(maxBody_) + " bytes"),
                     false);
    }
    if (ec) return close();
    const auto& message = parser_->get();
    Request request = requestOf(message);
    request.body = std::move(parser_->get().body());
    const bool keepAlive = message.keep_alive();
    // Kept for the handshake, should the handler accept the upgrade.
    std::shared_ptr<ws::ServerRequest> upgradeRequest;
    if (boost::beast::websocket::is_upgrade(message)) upgradeRequest = std::make_shared<ws::ServerRequest>(parser_->release());
    if (!decodesToUtf8(request)) {
      return respond(plainError(400, "invalid-request", "Invalid request",
                                "the path or query is not valid UTF-8 once percent-decoded"),
                     keepAlive);
    }
    auto answered = std::make_shared<std::atomic<bool>>(false);
    Responder responder = [self = this->shared_from_this(), keepAlive, answered, upgradeRequest](Response response) {
      if (answered->exchange(true)) return;
      asio::post(self->stream_.get_executor(), [self, keepAlive, upgradeRequest, response = std::move(response)]() mutable {
        if (response.upgrade && upgradeRequest) return self->upgrade(std::move(*upgradeRequest), std::move(response));
        if (response.upgrade) {
          return self->respond(plainError(426, "upgrade-required", "Upgrade required",
                                          "this path takes a WebSocket upgrade request"),
                               keepAlive);
        }
        // A refused upgrade: the client will not send another request on this connection.
        self->respond(std::move(response), keepAlive && !upgradeRequest);
      });
    };
    try {
      handler_(std::move(request), responder);
    } catch (const std::exception&) {
      responder(plainError(500, "internal-error", "Internal server error", "the request handler failed"));
    }
  }

  void respond(Response response, bool keepAlive) {
    if (response.file) return respondWithFile(std::move(response), keepAlive);
    auto message = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(response.status), 11);
    message->set(bhttp::field::server, "bai");
    message->set(bhttp::field::content_type, response.contentType);
    for (const auto& [name, value] : response.headers) message->set(name, value);
    message->body() = std::move(response.body);
    message->keep_alive(keepAlive);
    message->prepare_payload();
    bhttp::async_write(stream_, *message,
                       [self = this->shared_from_this(), message, keepAlive](beast::error_code ec, std::size_t) {
                         if (ec || !keepAlive) return self->close();
                         self->answered_ = true;
                         self->read();
                       });
  }

  // The header, then the file's range piece by piece: never more than one piece in memory.
  void respondWithFile(Response response, bool keepAlive) {
    auto message = std::make_shared<bhttp::response<bhttp::empty_body>>(static_cast<bhttp::status>(response.status), 11);
    message->set(bhttp::field::server, "bai");
    message->set(bhttp::field::content_type, response.contentType);
    for (const auto& [name, value] : response.headers) message->set(name, value);
    message->keep_alive(keepAlive);
    message->content_length(response.file->length);
    auto serializer = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*message);
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    bhttp::async_write_header(stream_, *serializer,
                              [self = this->shared_from_this(), message, serializer, keepAlive,
                               file = std::move(response.file)](beast::error_code ec, std::size_t) {
                                if (ec) return self->close();
                                self->writeFilePiece(file, 0, std::make_shared<std::vector<char>>(), keepAlive);
                              });
  }

  void writeFilePiece(std::shared_ptr<FileBody> file, std::uint64_t sent, std::shared_ptr<std::vector<char>> piece,
                      bool keepAlive) {
    if (sent == file->length) return finishResponse(keepAlive);
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kFilePieceBytes, file->length - sent));
    piece->resize(want);
    const ssize_t got = ::pread(file->fd, piece->data(), want, static_cast<off_t>(file->offset + sent));
    // The file shrank or failed under us: the promised length cannot be kept, so the
    // connection ends and the client sees a short body.
    if (got <= 0) return close();
    piece->resize(static_cast<std::size_t>(got));
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    asio::async_write(stream_, asio::buffer(*piece),
                      [self = this->shared_from_this(), file, sent, piece, keepAlive](beast::error_code ec, std::size_t n) {
                        if (ec) return self->close();
                        self->writeFilePiece(file, sent + n, piece, keepAlive);
                      });
  }

  void finishResponse(bool keepAlive) {
    if (!keepAlive) return close();
    answered_ = true;
    read();
  }

  // Hands the connection over to a WebSocket; this session ends here.
  void upgrade(ws::ServerRequest request, Response response) {
    ws::acceptUpgrade(std::move(stream_), std::move(request), peer_, response.upgradeOptions, std::move(response.upgrade),
                      context_);
  }

  void close() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<std::vector<char>> piece_;  // a streamed body's read buffer, kept for the next
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  const AsyncHandler& handler_;
  const BodyStreamer& streamer_;
  std::size_t maxBody_;
  std::string peer_;
  WaitingConnections& waiting_;
  std::shared_ptr<void> context_;  // its io_context: a WebSocket made from this connection keeps it
  std::uint64_t ticket_ = 0;  // in waiting_ while a request is awaited; 0: not
  bool answered_ = false;     // at least one response written
};

}  // namespace

Response Response::acceptUpgrade(OnUpgrade onOpen, ws::Options options) {
  Response response;
  response.status = 101;
  response.upgrade = std::move(onOpen);
  response.upgradeOptions = options;
  return response;
}

FileBody::~FileBody() {
  if (fd >= 0) ::close(fd);
}

std::string Request::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->second;
}

struct Server::Impl {
  ServerOptions options;
  AsyncHandler handler;
  std::shared_ptr<asio::ssl::context> tls;  // kept by the WebSockets of its connections too
  WaitingConnections waiting;  // before the contexts: their sessions leave it as they go
  // One io_context per thread; the acceptor runs on the first and hands each connection
  // to the next context in turn.
  // Shared with the WebSockets upgraded from their connections, which may outlive stop().
  std::vector<std::shared_ptr<asio::io_context>> contexts;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> backoff;
  std::vector<std::thread> threads;
  std::atomic<std::uint16_t> port{0};
  bool running = false;
  // Only the acceptor's thread touches these.
  std::size_t nextContext = 0;
  std::chrono::milliseconds delay = kFirstAcceptBackoff;
  bool exhausted = false;  // out of descriptors since the last accept that worked

  void accept() {
    asio::io_context& target = *contexts[nextContext++ % contexts.size()];
    acceptor->async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) return acceptFailed(ec);
      if (exhausted) {
        exhausted = false;
        say(LogLevel::Info, "accepting connections again");
      }
      delay = kFirstAcceptBackoff;
      serve(std::move(socket));
      accept();
    });
  }

  void acceptFailed(const beast::error_code& ec) {
    if (outOfDescriptors(ec)) {
      options.counters->descriptorsExhausted.fetch_add(1, std::memory_order_relaxed);
      const std::size_t shed = waiting.shedOldest(kShedPerFailedAccept);
      options.counters->connectionsShed.fetch_add(shed, std::memory_order_relaxed);
      if (!exhausted) {
        exhausted = true;
        say(LogLevel::Warning, "out of file descriptors (" + ec.message() + "): closing idle connections and " +
                                   "retrying; raise the limit (LimitNOFILE) if this recurs");
      }
    }
    backoff->expires_after(delay);
    delay = std::min(delay * 2, kLongestAcceptBackoff);
    backoff->async_wait([this](beast::error_code waited) {
      if (!waited) accept();
    });
  }

  // On the socket's own context, so that each session lives on one thread.
  void serve(tcp::socket socket) {
    auto executor = socket.get_executor();
    asio::post(executor, [this, socket = std::move(socket)]() mutable { startSession(std::move(socket)); });
  }

  void startSession(tcp::socket socket) {
    beast::error_code peerError;
    const auto remote = socket.remote_endpoint(peerError);
    const std::string peer = peerError ? "" : remote.address().to_string() + ":" + std::to_string(remote.port());
    (void)socket.set_option(tcp::no_delay(true), peerError);
    std::shared_ptr<asio::io_context> context;
    for (const auto& candidate : contexts) {
      if (candidate->get_executor() == socket.get_executor()) context = candidate;
    }
    if (tls) {
      auto keep = std::make_shared<std::pair<std::shared_ptr<asio::io_context>, std::shared_ptr<asio::ssl::context>>>(context, tls);
      std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
          beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls), handler, options.streamer,
          options.maxBodyBytes, peer, waiting, keep)
          ->run();
    } else {
      std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), handler, options.streamer,
                                                   options.maxBodyBytes, peer, waiting, context)
          ->run();
    }
  }

  void say(LogLevel level, const std::string& message) const {
    if (options.log) options.log(level, "http", options.address + ":" + std::to_string(port.load()) + ": " + message);
  }
};

Server::Server(ServerOptions options, Handler handler)
    : Server(std::move(options), AsyncHandler([handler = std::move(handler)](Request request, Responder respond) {
        respond(handler(request));
      })) {}

Server::Server(ServerOptions options, AsyncHandler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  if (!impl_->options.counters) impl_->options.counters = std::make_shared<ServerCounters>();
  impl_->handler = std::move(handler);
}

Server::~Server() { stop(); }

std::uint16_t Server::port() const { return impl_->port.load(); }

const ServerCounters& Server::counters() const { return *impl_->options.counters; }

Result<void> Server::start() {
  Impl& s = *impl_;
  const std::string where = s.options.address + ":" + std::to_string(s.options.port);
  if (!s.options.tlsCertificateFile.empty() || !s.options.tlsKeyFile.empty()) {
    try {
      s.tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
      s.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
      s.tls->use_certificate_chain_file(s.options.tlsCertificateFile);
      s.tls->use_private_key_file(s.options.tlsKeyFile, asio::ssl::context::pem);
    } catch (const std::exception& e) {
      return fail(ErrorCode::InvalidArgument, "TLS certificate or key for " + where + ": " + e.what());
    }
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(s.options.address, ec);
  if (ec) return fail(ErrorCode::InvalidArgument, "listen address '" + s.options.address + "': " + ec.message());
  const int threads = std::max(1, s.options.threads);
  for (int i = 0; i < threads; ++i) s.contexts.push_back(std::make_shared<asio::io_context>(1));
  s.acceptor = std::make_unique<tcp::acceptor>(*s.contexts.front());
  const tcp::endpoint endpoint(address, s.options.port);
  s.acceptor->open(endpoint.protocol(), ec);
  // SO_REUSEADDR only: a restart may bind over TIME_WAIT, a second daemon may not share the port.
  if (!ec) s.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(endpoint, ec);
  if (!ec) s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    s.acceptor.reset();
    s.contexts.clear();
    return fail(ErrorCode::Conflict, "cannot listen on " + where + ": " + ec.message());
  }
  s.port = s.acceptor->local_endpoint().port();
  s.backoff = std::make_unique<asio::steady_timer>(*s.contexts.front());
  s.accept();
  for (auto& context : s.contexts) {
    s.threads.emplace_back([context = context.get()] {
      // Keeps a context with no connection yet from returning at once.
      auto guard = asio::make_work_guard(*context);
      context->run();
    });
  }
  s.running = true;
  return {};
}

void Server::stop() {
  Impl& s = *impl_;
  if (!s.running) return;
  s.running = false;
  for (auto& context : s.contexts) context->stop();
  for (auto& thread : s.threads) thread.join();
  s.threads.clear();
  s.backoff.reset();
  s.acceptor.reset();
  s.contexts.clear();
}

Result<std::pair<std::string, std::uint16_t>> splitHostPort(const std::string& text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    return fail(ErrorCode::InvalidArgument, "'" + text + "' is not host:port");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string portText = text.substr(colon + 1);
  if (portText.find_first_not_of("0123456789") != std::string::npos || portText.size() > 5 || std::stoul(portText) > 65535) {
    return fail(ErrorCode::InvalidArgument, "'" + text + "': invalid port '" + portText + "'");
  }
  if (host.empty()) return fail(ErrorCode::InvalidArgument, "'" + text + "': missing host");
  return std::pair{host, static_cast<std::uint16_t>(std::stoul(portText))};
}

bool isValidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t point = 0, least = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xe0) == 0xc0) {
      length = 2, point = lead & 0x1f, least = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3, point = lead & 0x0f, least = 0x800;
    } else if ((lead & 0xf8) == 0xf0) {
      length = 4, point = lead & 0x07, least = 0x10000;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      point = (point << 6) | (next & 0x3f);
    }
    if (point < least || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) return false;
    i += length;
  }
  return true;
}

std::string serverCountersText(const std::string& prefix, const ServerCounters& counters) {
  PrometheusText out;
  out.family(prefix + "_http_descriptors_exhausted_total", MetricType::Counter,
             "Connections not accepted at once because the process had no file descriptor left.");
  out.sample({}, counters.descriptorsExhausted.load(std::memory_order_relaxed));
  out.family(prefix + "_http_connections_shed_total", MetricType::Counter,
             "Idle connections closed to free file descriptors.");
  out.sample({}, counters.connectionsShed.load(std::memory_order_relaxed));
  return out.text();
}

std::string urlDecode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace bai::http
