// The agent's HTTP client for the manager: heartbeats and session events, over one
// kept-alive connection, authenticated with the cluster token.
#pragma once

#include "secret_file.hpp"

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace bai::core {

struct ManagerClientOptions {
  std::string managerUrl;  // "http://127.0.0.1:8081"; a trailing '/' is ignored
  std::string agentId;
  std::string token;  // the cluster token; never logged, never in an error message
  std::chrono::milliseconds connectTimeout{2000};
  std::chrono::milliseconds requestTimeout{5000};  // the whole exchange, connecting included
};

// One thread makes the calls; only cancel() may come from another thread.
class ManagerClient {
 public:
  static Result<ManagerClient> create(ManagerClientOptions options);

  ManagerClient(ManagerClient&&) noexcept;
  ManagerClient& operator=(ManagerClient&&) noexcept;
  ~ManagerClient();

  // POST {managerUrl}/v1/agents/{agentId}/heartbeat
  Result<protocol::HeartbeatReply> heartbeat(const protocol::Heartbeat& heartbeat);
  // POST {managerUrl}/v1/agents/{agentId}/events
  Result<protocol::EventAck> sendEvents(const protocol::EventBatch& batch);

  // The HTTP status of the last call's answer; 0 when none came (unreachable, timed
  // out, cancelled), which tells a lost manager from one that refused the request.
  int lastHttpStatus() const;

  // Ends a call in flight at once and fails every later one; safe from any thread.
  void cancel();

 private:
  struct Impl;
  explicit ManagerClient(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

using bai::readClusterToken;  // from secret_file.hpp

}  // namespace bai::core
