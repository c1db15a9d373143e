#include "http_server.hpp"

#include <utility>  // Boost 1.74 Asio with GCC 12 in C++20 needs std::exchange declared first

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <vector>

namespace bai::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

constexpr auto kIdleTimeout = std::chrono::seconds(60);

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
  Session(Stream stream, const AsyncHandler& handler, std::size_t maxBody, std::string peer)
      : stream_(std::move(stream)), handler_(handler), maxBody_(maxBody), peer_(std::move(peer)) {}

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
    parser_->body_limit(maxBody_);
    parser_->header_limit(16 * 1024);
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      return respond(plainError(413, "body-too-large", "Request body too large",
                                "the limit is " + std::to_string(maxBody_) + " bytes"),
                     false);
    }
    if (ec) return close();
    const auto& message = parser_->get();
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    const std::size_t question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = parseQuery(request.target.substr(question + 1));
    for (const auto& field : message) request.headers[lower(std::string(field.name_string()))] = std::string(field.value());
    request.body = std::move(parser_->get().body());
    request.peer = peer_;
    const bool keepAlive = message.keep_alive();
    auto answered = std::make_shared<std::atomic<bool>>(false);
    Responder responder = [self = this->shared_from_this(), keepAlive, answered](Response response) {
      if (answered->exchange(true)) return;
      asio::post(self->stream_.get_executor(), [self, keepAlive, response = std::move(response)]() mutable {
        self->respond(std::move(response), keepAlive);
      });
    };
    try {
      handler_(std::move(request), responder);
    } catch (const std::exception&) {
      responder(plainError(500, "internal-error", "Internal server error", "the request handler failed"));
    }
  }

  void respond(Response response, bool keepAlive) {
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
                         self->read();
                       });
  }

  void close() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  const AsyncHandler& handler_;
  std::size_t maxBody_;
  std::string peer_;
};

}  // namespace

std::string Request::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->second;
}

struct Server::Impl {
  ServerOptions options;
  AsyncHandler handler;
  std::optional<asio::ssl::context> tls;
  // One io_context and acceptor per thread: no cross-thread handoff per request.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::thread> threads;
  std::atomic<std::uint16_t> port{0};
  bool running = false;

  void accept(tcp::acceptor& acceptor) {
    acceptor.async_accept([this, &acceptor](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
      } else {
        beast::error_code peerError;
        const auto remote = socket.remote_endpoint(peerError);
        const std::string peer = peerError ? "" : remote.address().to_string() + ":" + std::to_string(remote.port());
        (void)socket.set_option(tcp::no_delay(true), peerError);
        if (tls) {
          std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
              beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls), handler,
              options.maxBodyBytes, peer)
              ->run();
        } else {
          std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), handler,
                                                       options.maxBodyBytes, peer)
              ->run();
        }
      }
      accept(acceptor);
    });
  }
};

Server::Server(ServerOptions options, Handler handler)
    : Server(std::move(options), AsyncHandler([handler = std::move(handler)](Request request, Responder respond) {
        respond(handler(request));
      })) {}

Server::Server(ServerOptions options, AsyncHandler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

Server::~Server() { stop(); }

std::uint16_t Server::port() const { return impl_->port.load(); }

Result<void> Server::start() {
  Impl& s = *impl_;
  const std::string where = s.options.address + ":" + std::to_string(s.options.port);
  if (!s.options.tlsCertificateFile.empty() || !s.options.tlsKeyFile.empty()) {
    try {
      s.tls.emplace(asio::ssl::context::tls_server);
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
  std::uint16_t port = s.options.port;
  const int threads = std::max(1, s.options.threads);
  for (int i = 0; i < threads; ++i) {
    auto context = std::make_unique<asio::io_context>(1);
    auto acceptor = std::make_unique<tcp::acceptor>(*context);
    const tcp::endpoint endpoint(address, port);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->set_option(ReusePort(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      s.acceptors.clear();
      s.contexts.clear();
      return fail(ErrorCode::Conflict, "cannot listen on " + s.options.address + ":" + std::to_string(port) + ": " + ec.message());
    }
    port = acceptor->local_endpoint().port();  // the first bind fixes an ephemeral port for the rest
    s.contexts.push_back(std::move(context));
    s.acceptors.push_back(std::move(acceptor));
  }
  s.port = port;
  for (std::size_t i = 0; i < s.contexts.size(); ++i) {
    s.accept(*s.acceptors[i]);
    s.threads.emplace_back([context = s.contexts[i].get()] { context->run(); });
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
  s.acceptors.clear();
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
