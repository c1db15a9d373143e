#include "runtime/engine_http.hpp"

#include <utility>  // Boost 1.74 Asio with GCC 12 in C++20 needs std::exchange declared first

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fcntl.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <cstdint>
#include <limits>

namespace bai::core {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using Stream = beast::basic_stream<asio::local::stream_protocol>;

constexpr std::size_t kReadPieceBytes = 64 * 1024;

}  // namespace

Error engineUnreachable(std::string reason) { return Error{ErrorCode::Internal, "engine unreachable: " + std::move(reason)}; }

struct EngineConnection::State {
  std::filesystem::path socket;
  asio::io_context io;
  Stream stream{io};
  beast::flat_buffer buffer;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  std::atomic<bool> closed{false};

  // Runs one asynchronous step to its end or its deadline (the stream closes itself then).
  template <class Step>
  beast::error_code run(EngineDeadline deadline, Step step) {
    if (deadline) {
      stream.expires_at(*deadline);
    } else {
      stream.expires_never();
    }
    beast::error_code result;
    step([&result](beast::error_code error, std::size_t) { result = error; });
    io.restart();
    io.run();
    if (closed.load()) return asio::error::operation_aborted;
    return result;
  }

  Error broken(const char* step, const beast::error_code& error) const {
    if (error == beast::error::timeout) return engineUnreachable(std::string("no answer in time while ") + step);
    if (closed.load()) return engineUnreachable(std::string("connection closed by the client while ") + step);
    return engineUnreachable(std::string(step) + " " + socket.string() + ": " + error.message());
  }
};

EngineConnection::EngineConnection(std::filesystem::path socket) : state_(std::make_unique<State>()) {
  state_->socket = std::move(socket);
}

EngineConnection::~EngineConnection() = default;

void EngineConnection::close() {
  state_->closed.store(true);
  // The socket belongs to the reading thread: the close runs there, inside its io.run().
  asio::post(state_->io, [state = state_.get()] {
    beast::error_code ignored;
    state->stream.socket().shutdown(asio::socket_base::shutdown_both, ignored);
    state->stream.cancel();
  });
}

Result<int> EngineConnection::duplicateSocket() {
  State& state = *state_;
  if (!state.stream.socket().is_open()) return fail(ErrorCode::Internal, "duplicateSocket before begin");
  const int handle = ::fcntl(state.stream.socket().native_handle(), F_DUPFD_CLOEXEC, 0);
  if (handle < 0) return fail(ErrorCode::Internal, std::string("duplicating the engine's socket: ") + std::strerror(errno));
  return handle;
}

Result<EngineResponse> EngineConnection::begin(const EngineRequest& request, EngineDeadline deadline) {
  State& state = *state_;
  const bhttp::verb method = bhttp::string_to_verb(request.method);
  if (method == bhttp::verb::unknown) return fail(ErrorCode::InvalidArgument, "unknown HTTP method " + request.method);

  beast::error_code error = state.run(deadline, [&](auto done) {
    state.stream.async_connect(asio::local::stream_protocol::endpoint(state.socket.string()),
                               [done](beast::error_code e) mutable { done(e, 0); });
  });
  if (error) return Failure{state.broken("connecting to", error)};

  bhttp::request<bhttp::string_body> message{method, request.target, 11};
  message.set(bhttp::field::host, "engine");
  message.set(bhttp::field::user_agent, "bai-agent");
  if (!request.body.empty()) message.set(bhttp::field::content_type, "application/json");
  if (request.upgrade) {
    message.set(bhttp::field::connection, "Upgrade");
    message.set(bhttp::field::upgrade, "tcp");
  }
  message.body() = request.body;
  message.prepare_payload();
  error = state.run(deadline, [&](auto done) { bhttp::async_write(state.stream, message, done); });
  if (error) return Failure{state.broken("sending to", error)};

  state.parser.emplace();
  // readBody bounds what it reads. Not boost::none: Boost 1.74 compares a Content-Length
  // with an empty limit as larger than it.
  state.parser->body_limit(std::numeric_limits<std::uint64_t>::max());
  error = state.run(deadline, [&](auto done) { bhttp::async_read_header(state.stream, state.buffer, *state.parser, done); });
  if (error) return Failure{state.broken("reading the answer's headers from", error)};

  EngineResponse response;
  const auto& header = state.parser->get();
  response.status = header.result_int();
  if (auto field = header.find("Libpod-Api-Version"); field != header.end()) {
    response.libpodApiVersion = std::string(field->value());
  }
  return response;
}

Result<void> EngineConnection::readBody(const EnginePieceSink& sink, std::optional<std::size_t> limit,
                                        EngineDeadline deadline) {
  State& state = *state_;
  if (!state.parser) return fail(ErrorCode::Internal, "readBody before begin");
  auto& parser = *state.parser;
  const auto larger = [&limit] {
    return fail(ErrorCode::Internal, "the engine's answer is larger than " + std::to_string(limit.value_or(0)) + " bytes");
  };
  if (limit && parser.content_length() && *parser.content_length() > *limit) return larger();
  if (limit) parser.body_limit(*limit);
  std::array<char, kReadPieceBytes> piece{};
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    beast::error_code error = state.run(deadline, [&](auto done) {
      bhttp::async_read_some(state.stream, state.buffer, parser, done);
    });
    if (error == bhttp::error::need_buffer) error = {};
    if (error == bhttp::error::body_limit) return larger();
    if (error) return Failure{state.broken("reading the answer from", error)};
    const std::size_t got = piece.size() - parser.get().body().size;
    if (got > 0) {
      auto taken = sink(std::string_view(piece.data(), got));
      if (!taken) return taken;
    }
  }
  return {};
}

Result<void> EngineConnection::readUpgraded(const EnginePieceSink& sink) {
  State& state = *state_;
  if (state.buffer.size() > 0) {
    const auto buffered = state.buffer.data();
    auto taken = sink(std::string_view(static_cast<const char*>(buffered.data()), buffered.size()));
    state.buffer.consume(state.buffer.size());
    if (!taken) return taken;
  }
  std::array<char, kReadPieceBytes> piece{};
  for (;;) {
    std::size_t got = 0;
    beast::error_code error = state.run(std::nullopt, [&](auto done) {
      state.stream.async_read_some(asio::buffer(piece), [&got, done](beast::error_code e, std::size_t n) mutable {
        got = n;
        done(e, n);
      });
    });
    if (got > 0 && !state.closed.load()) {
      auto taken = sink(std::string_view(piece.data(), got));
      if (!taken) return taken;
    }
    if (error == asio::error::eof) return {};
    if (error) return Failure{state.broken("reading the attached stream from", error)};
  }
}

Result<EngineResponse> engineCall(const std::filesystem::path& socket, const EngineRequest& request,
                                  std::chrono::milliseconds timeout) {
  EngineConnection connection(socket);
  return engineCall(connection, request, timeout);
}

Result<EngineResponse> engineCall(EngineConnection& connection, const EngineRequest& request,
                                  std::chrono::milliseconds timeout) {
  const EngineDeadline deadline = EngineClock::now() + timeout;
  auto response = connection.begin(request, deadline);
  if (!response) return response;
  auto read = connection.readBody(
      [&body = response->body](std::string_view piece) -> Result<void> {
        body.append(piece);
        return {};
      },
      kMaxEngineBodyBytes, deadline);
  if (!read) return Failure{read.error()};
  return response;
}

}  // namespace bai::core
