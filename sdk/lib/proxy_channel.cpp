#include "proxy_channel.hpp"

#include "api_reply.hpp"

#include <algorithm>

namespace bai::client_internal {

ProxyChannel::ProxyChannel(const client::Client& client, std::string ref, client::TransferOperation operation,
                           std::string path, std::chrono::milliseconds timeout)
    : client_(client), ref_(std::move(ref)), operation_(operation), path_(std::move(path)), timeout_(timeout) {}

client::ClientResult<void> ProxyChannel::open() {
  auto grant = client_.vfolderGrant(ref_, operation_, path_);
  if (!grant) return Failure{grant.error()};
  while (!grant->url.empty() && grant->url.back() == '/') grant->url.pop_back();
  if (grant->url.rfind("http://", 0) != 0 && grant->url.rfind("https://", 0) != 0) {
    return Failure{client::ApiError{0, "invalid-reply", "Unexpected answer from the manager",
                                    "the grant's proxy URL must start with http:// or https://"}};
  }
  // It goes into a header: a control character or space would end it or start another.
  const bool printable = !grant->token.empty() && std::all_of(grant->token.begin(), grant->token.end(), [](char c) {
    return c > ' ' && c < 0x7f;
  });
  if (!printable) {
    return Failure{client::ApiError{0, "invalid-reply", "Unexpected answer from the manager",
                                    "the grant is empty or holds characters a header cannot carry"}};
  }
  grant_ = std::move(*grant);
  return {};
}

client::ClientResult<http::ClientResponse> ProxyChannel::send(http::ClientRequest request, const std::string& target) {
  request.url = grant_.url + target;
  request.timeout = timeout_;
  request.caFile = client_.config().caFile;
  for (int attempt = 0;; ++attempt) {
    request.headers["X-BAI-Grant"] = grant_.token;
    auto response = http::send(request);
    if (!response) {
      // The message names the URL (path and query) but never the grant.
      return Failure{client::ApiError{0, "proxy-unreachable", "Cannot reach the storage proxy", response.error().message}};
    }
    if (attempt > 0 || response->status != 403 || proxyError(*response).type != "grant-expired") return std::move(*response);
    if (auto renewed = open(); !renewed) return Failure{renewed.error()};
  }
}

client::ApiError proxyError(const http::ClientResponse& response) { return errorFromReply(response.status, response.body); }

}  // namespace bai::client_internal
