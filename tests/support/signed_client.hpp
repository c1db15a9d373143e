// Test support: a client of the manager's user API that signs every request with a
// keypair (bai::auth::signRequest) and sends it with libbai's own HTTP client. It can
// also send requests the manager must refuse: unsigned, or signed and then changed
// (method, target, body, date, nonce, signature), or an exact replay of the last one.
#pragma once

// By path: tests/support has an http_client.hpp of its own (the bearer client).
#include "../../sdk/lib/http_client.hpp"

#include <bai/request_signing.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bai::testing {

struct ApiKeypair {
  std::string accessKey;
  std::string secretKey;
};

// Reads the file `bai-manager init --admin-keypair-out` writes:
//   access-key = "..."
//   secret-key = "..."
// (comments and blank lines allowed). Nothing when either key is missing.
inline std::optional<ApiKeypair> readKeypairFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  ApiKeypair keypair;
  std::string line;
  while (std::getline(in, line)) {
    const auto equals = line.find('=');
    if (line.empty() || line[0] == '#' || equals == std::string::npos) continue;
    std::string name = line.substr(0, equals);
    name.erase(name.find_last_not_of(' ') + 1);
    const auto open = line.find('"', equals);
    const auto close = open == std::string::npos ? std::string::npos : line.find('"', open + 1);
    if (close == std::string::npos) continue;
    const std::string value = line.substr(open + 1, close - open - 1);
    if (name == "access-key") keypair.accessKey = value;
    if (name == "secret-key") keypair.secretKey = value;
  }
  if (keypair.accessKey.empty() || keypair.secretKey.empty()) return std::nullopt;
  return keypair;
}

struct ApiReply {
  int status = 0;       // 0: the exchange failed (body says why)
  std::string body;
  nlohmann::json json;  // the body parsed; a discarded value when it is not JSON
  std::map<std::string, std::string> headers;  // names in lower case

  // The `type` of an error document {type, title, detail}; empty otherwise.
  std::string errorType() const { return json.is_object() && json.contains("type") && json["type"].is_string() ? json["type"].get<std::string>() : ""; }
  std::string detail() const { return json.is_object() && json.contains("detail") && json["detail"].is_string() ? json["detail"].get<std::string>() : ""; }
};

// What to do differently from an honest request. The request is signed for the method,
// target and body given to SignedClient::request; the fields here change what is sent.
struct Tampering {
  std::optional<std::string> sendMethod;  // sent instead of the signed method
  std::optional<std::string> sendTarget;  // sent instead of the signed path and query
  std::optional<std::string> sendBody;    // sent instead of the signed body (hash header kept)
  bool rehashBody = false;                // with sendBody: also send the new body's hash
  std::chrono::seconds clockOffset{0};    // sign with a clock this far from ours
  std::optional<std::string> nonce;       // sign with this nonce (to reuse one)
  std::optional<ApiKeypair> signWith;     // sign with another keypair's secret (same access key sent)
  std::map<std::string, std::string> headers;  // set after signing, replacing signed ones
};

class SignedClient {
 public:
  SignedClient(std::string baseUrl, ApiKeypair keypair) : base_(std::move(baseUrl)), keypair_(std::move(keypair)) {}

  ApiReply get(const std::string& target) { return request("GET", target); }
  ApiReply del(const std::string& target) { return request("DELETE", target); }
  ApiReply post(const std::string& target, const std::string& body) { return request("POST", target, body); }
  ApiReply post(const std::string& target, const nlohmann::json& body) { return request("POST", target, body.dump()); }

  ApiReply request(const std::string& method, const std::string& target, const std::string& body = "",
                   const Tampering& tampering = {}) {
    const ApiKeypair& signer = tampering.signWith ? *tampering.signWith : keypair_;
    const auth::SigningKey key{keypair_.accessKey, signer.secretKey};
    const auto at = std::chrono::system_clock::now() + tampering.clockOffset;
    auto headers = tampering.nonce ? auth::signRequest(key, method, target, body, at, *tampering.nonce)
                                   : auth::signRequest(key, method, target, body, at);
    const std::string sentBody = tampering.sendBody.value_or(body);
    if (tampering.sendBody && tampering.rehashBody) headers[std::string(auth::kContentSha256Header)] = auth::sha256Hex(sentBody);
    for (const auto& [name, value] : tampering.headers) headers[name] = value;
    return send(tampering.sendMethod.value_or(method), tampering.sendTarget.value_or(target), sentBody, std::move(headers));
  }

  // No signature headers at all.
  ApiReply unsignedRequest(const std::string& method, const std::string& target, const std::string& body = "") {
    return send(method, target, body, {});
  }

  // Sends the previous request again byte for byte: same headers, nonce and signature.
  ApiReply resendLast() { return send(last_.method, last_.target, last_.body, last_.headers); }

  // Any headers, for requests signed some other way (an agent's bearer token, say).
  ApiReply send(const std::string& method, const std::string& target, const std::string& body,
                std::map<std::string, std::string> headers) {
    last_ = {method, target, body, headers};
    http::ClientRequest request;
    request.method = method;
    request.url = base_ + target;
    request.headers = std::move(headers);
    if (!body.empty()) request.headers.emplace("Content-Type", "application/json");
    request.body = body;
    request.timeout = timeout_;
    ApiReply reply;
    auto response = http::send(request);
    if (!response) {
      reply.body = response.error().message;
      return reply;
    }
    reply.status = response->status;
    reply.body = response->body;
    reply.headers = response->headers;
    reply.json = nlohmann::json::parse(reply.body, nullptr, false);
    return reply;
  }

  // Long polls (GET ?wait=) need more than the default.
  void setTimeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  const ApiKeypair& keypair() const { return keypair_; }
  const std::string& base() const { return base_; }

 private:
  struct Sent {
    std::string method, target, body;
    std::map<std::string, std::string> headers;
  };

  std::string base_;
  ApiKeypair keypair_;
  std::chrono::milliseconds timeout_{30000};
  Sent last_;
};

}  // namespace bai::testing
