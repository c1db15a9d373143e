// The manager's calls to other daemons' APIs (agents, storage proxies) share their form:
// "Authorization: Bearer <token>", a JSON body when there is one, the whole exchange within
// `timeout`, the connection within 2 s of it.
#pragma once

#include "http_client.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>

namespace bai::manager {

inline http::ClientRequest bearerRequest(std::string method, std::string url, std::string body, std::string_view token,
                                         std::chrono::milliseconds timeout) {
  http::ClientRequest request;
  request.method = std::move(method);
  request.url = std::move(url);
  request.headers = {{"Authorization", "Bearer " + std::string(token)}};
  if (!body.empty()) request.headers["Content-Type"] = "application/json";
  request.body = std::move(body);
  request.timeout = timeout;
  request.connectTimeout = std::min(timeout, std::chrono::milliseconds(2000));
  return request;
}

}  // namespace bai::manager
