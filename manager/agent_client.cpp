#include "agent_client.hpp"

#include "bearer_request.hpp"

#include "http_client.hpp"

namespace bai::manager {

std::string AgentCallError::describe() const {
  if (transport()) return error.detail;
  return error.type + ": " + (error.detail.empty() ? error.title : error.detail);
}

AgentClient::AgentClient(std::string clusterToken, std::chrono::milliseconds timeout, std::string caFile)
    : token_(std::move(clusterToken)), timeout_(timeout), caFile_(std::move(caFile)) {}

AgentCall<AgentReply> AgentClient::call(const std::string& method, const std::string& url, const std::string& body,
                                        std::size_t maxReplyBytes) const {
  http::ClientRequest request = bearerRequest(method, url, body, token_, timeout_);
  request.caFile = caFile_;
  request.maxReplyBytes = maxReplyBytes;
  auto response = http::send(request);
  if (!response) return Failure{AgentCallError{0, {"agent-unreachable", "Agent unreachable", response.error().message}}};
  return AgentReply{response->status, response->contentType, std::move(response->body), std::move(response->headers)};
}

AgentCall<protocol::SessionInfo> AgentClient::sessionCall(const std::string& method, const std::string& url,
                                                          const std::string& body) const {
  auto reply = call(method, url, body);
  if (!reply) return Failure{reply.error()};
  if (reply->status >= 200 && reply->status < 300) {
    auto info = protocol::SessionInfo::fromJson(reply->body);
    if (info) return *info;
    return Failure{AgentCallError{reply->status, {"bad-agent-reply", "Unreadable agent reply", info.error().message}}};
  }
  auto error = protocol::ApiError::fromJson(reply->body);
  if (!error) return Failure{AgentCallError{reply->status, {"agent-error", "Agent error", "HTTP " + std::to_string(reply->status)}}};
  return Failure{AgentCallError{reply->status, *error}};
}

AgentCall<protocol::SessionInfo> AgentClient::createSession(const std::string& rpcUrl,
                                                            const protocol::CreateSessionRequest& request) const {
  return sessionCall("POST", rpcUrl + "/v1/sessions", request.toJson());
}

AgentCall<protocol::SessionInfo> AgentClient::destroySession(const std::string& rpcUrl, const std::string& sessionId) const {
  return sessionCall("DELETE", rpcUrl + "/v1/sessions/" + http::urlEncode(sessionId), "");
}

AgentCall<protocol::SessionInfo> AgentClient::session(const std::string& rpcUrl, const std::string& sessionId) const {
  return sessionCall("GET", rpcUrl + "/v1/sessions/" + http::urlEncode(sessionId), "");
}

AgentCall<protocol::RuntimeInventory> AgentClient::refreshImages(const std::string& rpcUrl) const {
  auto reply = call("POST", rpcUrl + "/v1/images/refresh", "");
  if (!reply) return Failure{reply.error()};
  if (reply->status >= 200 && reply->status < 300) {
    auto inventory = protocol::RuntimeInventory::fromJson(reply->body);
    if (inventory) return *inventory;
    return Failure{AgentCallError{reply->status, {"bad-agent-reply", "Unreadable agent reply", inventory.error().message}}};
  }
  auto error = protocol::ApiError::fromJson(reply->body);
  if (!error) return Failure{AgentCallError{reply->status, {"agent-error", "Agent error", "HTTP " + std::to_string(reply->status)}}};
  return Failure{AgentCallError{reply->status, *error}};
}

AgentCall<AgentReply> AgentClient::get(const std::string& rpcUrl, const std::string& pathAndQuery,
                                       std::size_t maxReplyBytes) const {
  return call("GET", rpcUrl + pathAndQuery, "", maxReplyBytes);
}

}  // namespace bai::manager
