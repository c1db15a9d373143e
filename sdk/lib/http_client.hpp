// A small blocking HTTP client (libcurl) for bai's own calls between daemons and from
// clients: one kept-alive handle per calling thread, bounded replies, timeouts. Internal.
#pragma once

#include <bai/result.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace bai::http {

struct ClientResponse;

struct ClientRequest {
  std::string method = "GET";
  std::string url;
  std::map<std::string, std::string> headers;
  std::string body;
  std::chrono::milliseconds connectTimeout{2000};
  std::chrono::milliseconds timeout{10000};  // the whole exchange
  std::size_t maxReplyBytes = 16u << 20;
  bool verifyTls = true;
  std::string caFile;  // PEM bundle to verify the server with instead of the system's
  // Set: a 2xx answer's body is handed here piece by piece as it arrives, with the
  // answer's status and headers, instead of being collected (maxReplyBytes does not
  // apply); false stops the exchange. Other answers (errors) are collected as usual.
  std::function<bool(std::string_view piece, const ClientResponse& head)> bodySink = {};
  // Set (with bodySourceBytes): the request's body is read from here as it is sent, instead
  // of from `body`: fills `buffer` with the body's bytes from `at` on (what this exchange
  // already sent), returns how many; 0 before the end fails the exchange. A large upload
  // then never sits in memory whole, and the same request can be sent again.
  std::function<std::size_t(char* buffer, std::size_t size, std::uint64_t at)> bodySource = {};
  std::uint64_t bodySourceBytes = 0;
};

struct ClientResponse {
  int status = 0;
  std::string body;
  std::string contentType;
  std::map<std::string, std::string> headers;  // names in lower case; the last of repeated ones
};

// Any HTTP status is a response; only a failed exchange (unreachable, timed out, reply
// too large) is an error, whose message names the URL but never a header's value.
Result<ClientResponse> send(const ClientRequest& request);

// curl_global_init, once per process, before any thread uses libcurl.
Result<void> initialiseCurl();

// Percent-encodes one path segment or query value.
std::string urlEncode(const std::string& text);

}  // namespace bai::http
