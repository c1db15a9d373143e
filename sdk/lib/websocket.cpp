#include "websocket.hpp"

#include "websocket_beast.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace bai::ws {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

CloseInfo closeInfoOf(const beast::error_code& ec, const websocket::close_reason& peerReason) {
  if (ec == websocket::error::closed) {
    return {static_cast<std::uint16_t>(peerReason.code ? peerReason.code : kCloseNormal),
            std::string(peerReason.reason.c_str())};
  }
  if (ec == websocket::error::message_too_big || ec == websocket::error::buffer_overflow) {
    return {kCloseTooBig, "message too big"};
  }
  if (ec == beast::error::timeout) return {kCloseAbnormal, "timed out"};
  return {kCloseAbnormal, ec.message()};
}

// One WebSocket over a Beast stream. Every handler and every state change runs on the
// stream's executor (one thread), so the state needs no lock; the public calls post there.
template <class NextLayer>
class BeastWebSocket final : public WebSocket {
 public:
  // `keepAlive`: what the stream needs to outlive it (a client's I/O context, its TLS
  // context); `onDestroy`: runs first in the destructor.
  BeastWebSocket(NextLayer next, std::string peer, const Options& options, std::shared_ptr<void> keepAlive = {},
                 std::function<void()> onDestroy = {})
      : keepAlive_(std::move(keepAlive)), ws_(std::move(next)), peer_(std::move(peer)), onDestroy_(std::move(onDestroy)) {
    ws_.binary(true);
    ws_.read_message_max(options.maxMessageBytes);
    ws_.auto_fragment(false);
    timeouts_.handshake_timeout = options.handshakeTimeout;
    timeouts_.idle_timeout = options.idleTimeout;
    timeouts_.keep_alive_pings = true;
  }
  ~BeastWebSocket() override {
    if (onDestroy_) onDestroy_();
  }

  websocket::stream<NextLayer>& stream() { return ws_; }

  // After the handshake (either side): the WebSocket's own timeouts replace the TCP ones.
  void opened() {
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(timeouts_);
  }

  void start(OnMessage onMessage, OnClose onClose) override {
    post([this, onMessage = std::move(onMessage), onClose = std::move(onClose)]() mutable {
      onMessage_ = std::move(onMessage);
      onClose_ = std::move(onClose);
      if (closed_) return deliverClose();
      read();
    });
  }

  void readNext() override {
    post([this] { read(); });
  }

  void send(std::string message, OnWritten written) override {
    queued_.fetch_add(message.size(), std::memory_order_relaxed);
    post([this, message = std::move(message), written = std::move(written)]() mutable {
      if (closed_ || closeRequested_) {
        queued_.fetch_sub(message.size(), std::memory_order_relaxed);
        if (written) written(false);
        return;
      }
      queue_.emplace_back(std::move(message), std::move(written));
      if (!writing_) write();
    });
  }

  void close(std::uint16_t code, std::string reason) override {
    post([this, code, reason = std::move(reason)]() mutable {
      if (closed_ || closeRequested_) return;
      closeRequested_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
      if (!writing_) sendClose();
    });
  }

  std::size_t queuedBytes() const override { return queued_.load(std::memory_order_relaxed); }
  std::string peer() const override { return peer_; }

  // Ends the connection at once, without a close handshake (the connector's shutdown).
  void abort() {
    post([this] {
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      finish({kCloseGoingAway, "shutting down"});
    });
  }

 private:
  template <class Function>
  void post(Function function) {
    asio::post(ws_.get_executor(), [self = this->shared_from_this(), function = std::move(function)]() mutable {
      function();
    });
  }

  void read() {
    if (closed_ || reading_ || !onMessage_) return;
    reading_ = true;
    ws_.async_read(buffer_, [self = this->shared_from_this(), this](beast::error_code ec, std::size_t) {
      reading_ = false;
      if (ec) return finish(closeInfoOf(ec, ws_.reason()));
      std::string message = beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      if (onMessage_) onMessage_(std::move(message));
    });
  }

  void write() {
    if (queue_.empty()) {
      writing_ = false;
      if (closeRequested_) sendClose();
      return;
    }
    writing_ = true;
    ws_.async_write(asio::buffer(queue_.front().first),
                    [self = this->shared_from_this(), this](beast::error_code ec, std::size_t) {
                      auto [message, written] = std::move(queue_.front());
                      queue_.pop_front();
                      queued_.fetch_sub(message.size(), std::memory_order_relaxed);
                      if (written) written(!ec);
                      if (ec || closed_) {
                        writing_ = false;
                        return finish(closeInfoOf(ec, ws_.reason()));
                      }
                      write();
                    });
  }

  void sendClose() {
    if (closed_ || closing_) return;
    closing_ = true;
    ws_.async_close(*closeRequested_, [self = this->shared_from_this(), this](beast::error_code ec) {
      if (ec && ec != websocket::error::closed) return finish(closeInfoOf(ec, ws_.reason()));
      // A read still pending ends with `closed` once the peer's answer arrives; none pending: done.
      if (!reading_) {
        finish({static_cast<std::uint16_t>(closeRequested_->code), std::string(closeRequested_->reason.c_str())});
      }
    });
  }

  void finish(const CloseInfo& info) {
    if (closed_) return;
    closed_ = true;
    closeInfo_ = info;
    // The message being written stays: its write's handler is still to come.
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      auto [message, written] = std::move(queue_.back());
      queue_.pop_back();
      queued_.fetch_sub(message.size(), std::memory_order_relaxed);
      if (written) written(false);
    }
    if (onClose_) deliverClose();
  }

  void deliverClose() {
    auto onClose = std::move(onClose_);
    onClose_ = nullptr;
    onMessage_ = nullptr;  // the callbacks may own this socket: break the cycle
    if (onClose) onClose(closeInfo_);
  }

  std::shared_ptr<void> keepAlive_;  // destroyed after ws_
  websocket::stream<NextLayer> ws_;
  std::string peer_;
  std::function<void()> onDestroy_;
  websocket::stream_base::timeout timeouts_{};
  beast::flat_buffer buffer_;
  OnMessage onMessage_;
  OnClose onClose_;
  std::deque<std::pair<std::string, OnWritten>> queue_;
  std::atomic<std::size_t> queued_{0};
  std::optional<websocket::close_reason> closeRequested_;
  CloseInfo closeInfo_;
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
};

template <class Stream>
void acceptOn(Stream stream, ServerRequest request, std::string peer, Options options, OnOpen onOpen,
              std::shared_ptr<void> context) {
  auto socket = std::make_shared<BeastWebSocket<Stream>>(std::move(stream), std::move(peer), options, std::move(context));
  socket->stream().set_option(websocket::stream_base::decorator(
      [](websocket::response_type& response) { response.set(bhttp::field::server, "bai"); }));
  beast::get_lowest_layer(socket->stream()).expires_after(options.handshakeTimeout);
  auto held = std::make_shared<ServerRequest>(std::move(request));
  socket->stream().async_accept(*held, [socket, held, onOpen = std::move(onOpen)](beast::error_code ec) {
    if (ec) return;
    socket->opened();
    onOpen(socket);
  });
}

// "wss://host:port/path?q" and the like, split.
struct Endpoint {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;
};

Result<Endpoint> parseUrl(const std::string& url) {
  Endpoint endpoint;
  std::string rest;
  for (const auto& [prefix, tls] : {std::pair{"ws://", false}, {"http://", false}, {"wss://", true}, {"https://", true}}) {
    if (url.rfind(prefix, 0) == 0) {
      endpoint.tls = tls;
      rest = url.substr(std::string_view(prefix).size());
      break;
    }
  }
  if (rest.empty()) return fail(ErrorCode::InvalidArgument, "'" + url + "' is not a ws://, wss://, http:// or https:// URL");
  const std::size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  endpoint.target = slash == std::string::npos ? "/" : rest.substr(slash);
  const std::size_t colon = authority.rfind(':');
  const bool bracketed = !authority.empty() && authority.front() == '[';
  if (colon != std::string::npos && (!bracketed || authority.find(']') < colon)) {
    endpoint.port = authority.substr(colon + 1);
    authority = authority.substr(0, colon);
  } else {
    endpoint.port = endpoint.tls ? "443" : "80";
  }
  if (bracketed && authority.size() >= 2 && authority.back() == ']') authority = authority.substr(1, authority.size() - 2);
  if (authority.empty() || endpoint.port.empty() || endpoint.port.find_first_not_of("0123456789") != std::string::npos) {
    return fail(ErrorCode::InvalidArgument, "'" + url + "': missing or invalid host or port");
  }
  endpoint.host = authority;
  return endpoint;
}

}  // namespace

void acceptUpgrade(beast::tcp_stream stream, ServerRequest request, std::string peer, Options options, OnOpen onOpen,
                   std::shared_ptr<void> context) {
  acceptOn(std::move(stream), std::move(request), std::move(peer), options, std::move(onOpen), std::move(context));
}

void acceptUpgrade(TlsStream stream, ServerRequest request, std::string peer, Options options, OnOpen onOpen,
                   std::shared_ptr<void> context) {
  acceptOn(std::move(stream), std::move(request), std::move(peer), options, std::move(onOpen), std::move(context));
}

bool isUpgradeRequest(const std::map<std::string, std::string>& headers) {
  auto lower = [](std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
  };
  auto upgrade = headers.find("upgrade");
  auto connection = headers.find("connection");
  return upgrade != headers.end() && connection != headers.end() && lower(upgrade->second) == "websocket" &&
         lower(connection->second).find("upgrade") != std::string::npos;
}

// ---- BlockingWebSocket ----

struct BlockingWebSocket::State {
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<std::string> message;  // delivered, not yet received
  bool closed = false;
  bool abandoned = false;  // the owner stopped waiting for the socket
  CloseInfo closeInfo;
};

BlockingWebSocket::BlockingWebSocket(std::shared_ptr<WebSocket> socket)
    : socket_(std::move(socket)), state_(std::make_shared<State>()) {
  socket_->start(
      [state = state_](std::string message) {
        const std::lock_guard lock(state->mutex);
        state->message = std::move(message);
        state->changed.notify_all();
      },
      [state = state_](const CloseInfo& info) {
        const std::lock_guard lock(state->mutex);
        state->closed = true;
        state->closeInfo = info;
        state->changed.notify_all();
      });
}

BlockingWebSocket::~BlockingWebSocket() { close(); }

std::optional<std::string> BlockingWebSocket::receive(std::optional<std::chrono::milliseconds> timeout) {
  std::unique_lock lock(state_->mutex);
  auto ready = [&] { return state_->message.has_value() || state_->closed; };
  if (timeout) {
    if (!state_->changed.wait_for(lock, *timeout, ready)) return std::nullopt;
  } else {
    state_->changed.wait(lock, ready);
  }
  if (!state_->message) return std::nullopt;
  std::string message = std::move(*state_->message);
  state_->message.reset();
  lock.unlock();
  socket_->readNext();
  return message;
}

bool BlockingWebSocket::send(std::string message) {
  auto written = std::make_shared<std::optional<bool>>();
  socket_->send(std::move(message), [state = state_, written](bool ok) {
    const std::lock_guard lock(state->mutex);
    *written = ok;
    state->changed.notify_all();
  });
  std::unique_lock lock(state_->mutex);
  state_->changed.wait(lock, [&] { return written->has_value() || state_->abandoned; });
  return written->value_or(false);
}

void BlockingWebSocket::abandon() {
  const std::lock_guard lock(state_->mutex);
  state_->abandoned = true;
  state_->closed = true;
  state_->changed.notify_all();
}

void BlockingWebSocket::close(std::uint16_t code, std::string reason) { socket_->close(code, std::move(reason)); }

bool BlockingWebSocket::closed() const {
  const std::lock_guard lock(state_->mutex);
  return state_->closed;
}

CloseInfo BlockingWebSocket::closeInfo() const {
  const std::lock_guard lock(state_->mutex);
  return state_->closeInfo;
}

// ---- Connector ----

// The open client sockets, so that the connector's end can end them; a socket leaves it
// when destroyed, which may be after the connector is gone.
struct OpenSockets {
  std::mutex mutex;
  std::uint64_t nextId = 0;
  std::map<std::uint64_t, std::function<void()>> aborters;

  std::vector<std::function<void()>> all() {
    const std::lock_guard lock(mutex);
    std::vector<std::function<void()>> out;
    for (auto& [id, abort] : aborters) out.push_back(abort);
    return out;
  }
};

struct Connector::Impl {
  // Shared with every socket made here: a socket destroyed after the connector still has
  // the context its stream belongs to.
  std::shared_ptr<asio::io_context> contextHolder = std::make_shared<asio::io_context>(1);
  asio::io_context& context = *contextHolder;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{context.get_executor()};
  std::thread thread;
  std::shared_ptr<OpenSockets> open = std::make_shared<OpenSockets>();

  template <class Stream>
  void handshake(std::shared_ptr<BeastWebSocket<Stream>> socket, const Endpoint& endpoint,
                 std::shared_ptr<ConnectRequest> request, OnConnected done) {
    socket->stream().set_option(websocket::stream_base::decorator([request](websocket::request_type& upgrade) {
      upgrade.set(bhttp::field::user_agent, "bai");
      for (const auto& [name, value] : request->headers) upgrade.set(name, value);
    }));
    auto response = std::make_shared<websocket::response_type>();
    const std::string host = endpoint.host + ":" + endpoint.port;
    socket->stream().async_handshake(
        *response, host, endpoint.target,
        [this, socket, response, request, done = std::move(done)](beast::error_code ec) {
          if (ec == websocket::error::upgrade_declined) {
            return done(ConnectOutcome{nullptr, Declined{static_cast<int>(response->result_int()), response->body()}});
          }
          if (ec) return done(fail(ErrorCode::Internal, "WebSocket " + request->url + ": " + ec.message()));
          socket->opened();
          done(ConnectOutcome{socket, std::nullopt});
        });
  }

  void connectTcp(std::shared_ptr<ConnectRequest> request, Endpoint endpoint, OnConnected done) {
    auto resolver = std::make_shared<tcp::resolver>(context);
    resolver->async_resolve(
        endpoint.host, endpoint.port,
        [this, resolver, request, endpoint, done = std::move(done)](beast::error_code ec,
                                                                    tcp::resolver::results_type results) mutable {
          if (ec) return done(fail(ErrorCode::Internal, "WebSocket " + request->url + ": resolving: " + ec.message()));
          auto tcpStream = std::make_shared<beast::tcp_stream>(context);
          tcpStream->expires_after(request->connectTimeout);
          tcpStream->async_connect(results, [this, tcpStream, request, endpoint, done = std::move(done)](
                                                beast::error_code ec, const tcp::endpoint&) mutable {
            if (ec) return done(fail(ErrorCode::Internal, "WebSocket " + request->url + ": connecting: " + ec.message()));
            beast::error_code ignored;
            tcpStream->socket().set_option(tcp::no_delay(true), ignored);
            opened(std::move(*tcpStream), request, endpoint, std::move(done));
          });
        });
  }

  void opened(beast::tcp_stream tcpStream, std::shared_ptr<ConnectRequest> request, const Endpoint& endpoint,
              OnConnected done) {
    beast::error_code ignored;
    const auto remote = tcpStream.socket().remote_endpoint(ignored);
    const std::string peer = remote.address().to_string() + ":" + std::to_string(remote.port());
    if (!endpoint.tls) {
      auto socket = makeSocket<beast::tcp_stream>(std::move(tcpStream), peer, request->options);
      return handshake(socket, endpoint, request, std::move(done));
    }
    auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    try {
      if (request->verifyTls) {
        tls->set_verify_mode(asio::ssl::verify_peer);
        if (request->caFile.empty()) {
          tls->set_default_verify_paths();
        } else {
          tls->load_verify_file(request->caFile);
        }
      } else {
        tls->set_verify_mode(asio::ssl::verify_none);
      }
    } catch (const std::exception& e) {
      return done(fail(ErrorCode::InvalidArgument, "WebSocket " + request->url + ": TLS: " + e.what()));
    }
    // The TLS context must outlive the stream: the socket keeps it.
    auto socket = makeSocket<TlsStream>(TlsStream(std::move(tcpStream), *tls), peer, request->options, tls);
    auto& ssl = socket->stream().next_layer();
    SSL_set_tlsext_host_name(ssl.native_handle(), endpoint.host.c_str());
    if (request->verifyTls) ssl.set_verify_callback(asio::ssl::host_name_verification(endpoint.host));
    ssl.async_handshake(asio::ssl::stream_base::client,
                        [this, socket, request, endpoint, done = std::move(done)](beast::error_code ec) mutable {
                          if (ec) return done(fail(ErrorCode::Internal, "WebSocket " + request->url + ": TLS: " + ec.message()));
                          handshake(socket, endpoint, request, std::move(done));
                        });
  }

  template <class Stream>
  std::shared_ptr<BeastWebSocket<Stream>> makeSocket(Stream stream, const std::string& peer, const Options& options,
                                                     std::shared_ptr<asio::ssl::context> tls = {}) {
    std::uint64_t id = 0;
    {
      const std::lock_guard lock(open->mutex);
      id = ++open->nextId;
    }
    auto keepAlive = std::make_shared<std::pair<std::shared_ptr<asio::io_context>, std::shared_ptr<asio::ssl::context>>>(
        contextHolder, std::move(tls));
    auto socket = std::make_shared<BeastWebSocket<Stream>>(std::move(stream), peer, options, keepAlive,
                                                           [open = open, id] {
                                                             const std::lock_guard lock(open->mutex);
                                                             open->aborters.erase(id);
                                                           });
    const std::lock_guard lock(open->mutex);
    open->aborters.emplace(id, [weak = std::weak_ptr(socket)] {
      if (auto socket = weak.lock()) socket->abort();
    });
    return socket;
  }
};

Connector::Connector() : impl_(std::make_unique<Impl>()) {
  impl_->thread = std::thread([context = impl_->contextHolder] { context->run(); });
}

Connector::~Connector() {
  for (auto& abort : impl_->open->all()) abort();
  impl_->work.reset();
  // After the aborts: a failed Beast stream keeps its ping timer until it fires, so the
  // context would not run out of work for half the idle timeout.
  asio::post(impl_->context, [context = impl_->contextHolder] { context->stop(); });
  impl_->thread.join();
  // The completions the aborts made ready, so that they release their sockets now.
  impl_->context.restart();
  impl_->context.poll();
}

void Connector::connect(ConnectRequest request, OnConnected done) {
  auto endpoint = parseUrl(request.url);
  if (!endpoint) {
    return asio::post(impl_->context, [done = std::move(done), error = endpoint.error()] { done(Failure{error}); });
  }
  auto held = std::make_shared<ConnectRequest>(std::move(request));
  asio::post(impl_->context, [this, held, endpoint = *endpoint, done = std::move(done)]() mutable {
    impl_->connectTcp(held, std::move(endpoint), std::move(done));
  });
}

Result<ConnectOutcome> Connector::connect(ConnectRequest request) {
  auto outcome = std::make_shared<std::promise<Result<ConnectOutcome>>>();
  auto future = outcome->get_future();
  connect(std::move(request), [outcome](Result<ConnectOutcome> result) { outcome->set_value(std::move(result)); });
  return future.get();
}

}  // namespace bai::ws
