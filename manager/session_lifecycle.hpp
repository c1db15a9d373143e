// Carries the ledger's decisions to agents and their answers back: start a placed
// session, stop a destroyed one, ask about one an agent no longer lists, retry calls
// that got no answer, and end sessions. Calls go through the AgentDispatcher; their
// answers are applied under the ledger's lock, one lock scope per step.
//
// Threads: the public calls run on whichever thread holds the ledger's Guard (the
// scheduler, the heartbeat handlers, the API); the answers on the dispatcher's threads.
// It keeps no state of its own: a session's in-flight mark and retry time live in the
// ledger.
#pragma once

#include "agent_dispatcher.hpp"
#include "ledger.hpp"

#include <optional>
#include <string>

namespace bai::manager {

class SessionLifecycle {
 public:
  using Guard = Ledger::Guard;

  SessionLifecycle(Ledger& ledger, AgentDispatcher& dispatcher, Metrics& metrics, LogSink log);

  // Each marks the session in flight and queues the call to its agent.
  void start(const Guard& guard, const std::string& id);    // create there (idempotent by id)
  void destroy(const Guard& guard, const std::string& id);  // stop there
  void verify(const Guard& guard, const std::string& id);   // ask there whether it still runs
  // Stops a session on an agent that must not run it (ended here, or placed elsewhere).
  void stopStray(const Guard& guard, const std::string& id, const std::string& agentId, const std::string& rpcUrl);
  // Queues again the calls whose retry time has come, while their agent is alive.
  void retryStalled(const Guard& guard);
  // Ends an active session with `status` and frees its reservation, in one transaction.
  void end(const Guard& guard, SessionRecord session, SessionStatus status, std::string reason,
           std::optional<int> exitCode = {}, std::int64_t endedAtMillis = 0);

 private:
  struct Target {
    std::string agentId;
    std::string rpcUrl;
  };
  using SessionCall = std::function<AgentCall<protocol::SessionInfo>(const AgentClient&, const std::string& rpcUrl)>;
  using Finish = std::function<void(const Guard&, const Target&, AgentCall<protocol::SessionInfo>)>;

  void queue(const Guard& guard, const std::string& id, SessionCall call, Finish finish, bool onlyIfScheduled = false);
  // Where to send a queued call now; nullopt (in-flight mark cleared) when there is no
  // agent to call, or when a start was overtaken by a destroy.
  std::optional<Target> targetNow(const std::string& id, bool onlyIfScheduled);
  void finishStart(const Guard& guard, const std::string& id, const Target& target, AgentCall<protocol::SessionInfo> created);
  void refused(const Guard& guard, const SessionRecord& session, const Target& target, const AgentCallError& error);
  void finishDestroy(const Guard& guard, const std::string& id, AgentCall<protocol::SessionInfo> destroyed);
  void finishVerify(const Guard& guard, const std::string& id, AgentCall<protocol::SessionInfo> info);
  void retryLater(const Guard& guard, const std::string& id);
  // The group's image_pull_policy, sent with each container session's create.
  protocol::PullPolicy pullPolicyOf(const ClusterState& state, const std::string& group) const;
  void log(LogLevel level, const std::string& message) const;

  Ledger& ledger_;
  AgentDispatcher& dispatcher_;
  Metrics& metrics_;
  LogSink log_;
};

}  // namespace bai::manager
