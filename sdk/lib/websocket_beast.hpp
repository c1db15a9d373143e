// The Beast side of ws::WebSocket, for the two places that hold a Beast stream: the HTTP
// server, which upgrades a connection it parsed, and the client connector. Internal.
#pragma once

#include "websocket.hpp"

#include <utility>  // Boost 1.74 Asio with GCC 12 in C++20 needs std::exchange declared first

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace bai::ws {

using ServerRequest = boost::beast::http::request<boost::beast::http::string_body>;
using OnOpen = std::function<void(std::shared_ptr<WebSocket>)>;

// Answers the upgrade `request` on `stream` (101) and hands the open WebSocket to
// `onOpen` on the stream's thread; a failed handshake just closes the stream. The
// WebSocket keeps `context` (the stream's io_context) alive: it may outlive the server.
void acceptUpgrade(boost::beast::tcp_stream stream, ServerRequest request, std::string peer, Options options,
                   OnOpen onOpen, std::shared_ptr<void> context);
void acceptUpgrade(boost::beast::ssl_stream<boost::beast::tcp_stream> stream, ServerRequest request, std::string peer,
                   Options options, OnOpen onOpen, std::shared_ptr<void> context);

}  // namespace bai::ws
