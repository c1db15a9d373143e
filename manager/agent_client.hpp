// The manager's calls to agents' RPC (create, destroy, status, logs, image refresh), authenticated
// with the cluster token. Blocking; called only from the AgentDispatcher's threads.
#pragma once

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace bai::manager {

// What went wrong with a call: either the agent answered with an error (httpStatus set,
// error is its document) or the exchange failed (httpStatus 0: unreachable, timed out).
struct AgentCallError {
  int httpStatus = 0;
  protocol::ApiError error;

  bool transport() const { return httpStatus == 0; }
  std::string describe() const;
};

template <class T>
using AgentCall = Result<T, AgentCallError>;

struct AgentReply {
  int status = 0;
  std::string contentType;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
};

class AgentClient {
 public:
  static constexpr std::size_t kMaxReplyBytes = 16u << 20;  // of any answer

  // `caFile`: the PEM bundle agents' RPC certificates are verified with (empty: the system's).
  AgentClient(std::string clusterToken, std::chrono::milliseconds timeout, std::string caFile = "");

  AgentCall<protocol::SessionInfo> createSession(const std::string& rpcUrl, const protocol::CreateSessionRequest& request) const;
  AgentCall<protocol::SessionInfo> destroySession(const std::string& rpcUrl, const std::string& sessionId) const;
  AgentCall<protocol::SessionInfo> session(const std::string& rpcUrl, const std::string& sessionId) const;
  // POST /v1/images/refresh: the agent reads its engine again and answers what it has.
  AgentCall<protocol::RuntimeInventory> refreshImages(const std::string& rpcUrl) const;
  // GET {rpcUrl}{pathAndQuery} passed through as the agent answered (logs, alloc-map); a
  // longer answer than `maxReplyBytes` is a transport error, so one call holds bounded memory.
  AgentCall<AgentReply> get(const std::string& rpcUrl, const std::string& pathAndQuery,
                            std::size_t maxReplyBytes = kMaxReplyBytes) const;

  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  AgentCall<AgentReply> call(const std::string& method, const std::string& url, const std::string& body,
                             std::size_t maxReplyBytes = kMaxReplyBytes) const;
  AgentCall<protocol::SessionInfo> sessionCall(const std::string& method, const std::string& url, const std::string& body) const;

  std::string token_;  // never logged, never in an error
  std::chrono::milliseconds timeout_;
  std::string caFile_;
};

}  // namespace bai::manager
