// The manager's core: cluster state in memory over the store, the placement loop, the
// dispatch of starts and stops to agents, liveness, and long polls. The HTTP layer
// (manager_api) turns requests into these calls; everything here is thread-safe.
#pragma once

#include "agent_client.hpp"
#include "cluster.hpp"
#include "log_sink.hpp"
#include "manager_config.hpp"
#include "metrics.hpp"
#include "slot_registry.hpp"
#include "store/store.hpp"

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bai::manager {

// Who is calling the user API, as the request signature proved.
struct Caller {
  std::string accessKey;
  bool admin = false;
};

struct ApiFailure {
  int status = 500;
  protocol::ApiError error;
};

template <class T>
using ApiResult = Result<T, ApiFailure>;

Failure<ApiFailure> apiFailure(int status, std::string type, std::string title, std::string detail);

struct NewSession {
  std::string name;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::vector<std::pair<std::string, std::string>> resources;  // as the user typed them: {"mem", "4g"}
  std::string scalingGroup = "default";
};

struct AgentSummary {
  AgentRecord record;
  double secondsSinceHeartbeat = 0;
};

class Manager {
 public:
  static Result<std::unique_ptr<Manager>> start(ManagerSettings settings, std::unique_ptr<Store> store,
                                                std::string clusterToken, LogSink log);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Agents (the API layer has checked the cluster token).
  ApiResult<protocol::HeartbeatReply> heartbeat(const std::string& agentId, const protocol::Heartbeat& heartbeat);
  ApiResult<protocol::EventAck> events(const std::string& agentId, const protocol::EventBatch& batch);

  // Sessions. Users see their own; admins see all.
  ApiResult<SessionRecord> createSession(const Caller& caller, const NewSession& request);
  std::vector<SessionRecord> listSessions(const Caller& caller, std::optional<SessionStatus> status);
  ApiResult<SessionRecord> session(const Caller& caller, const std::string& id);
  // Answers once the session is over or after `wait`, whichever comes first.
  using SessionCallback = std::function<void(ApiResult<SessionRecord>)>;
  void waitForSession(const Caller& caller, const std::string& id, std::chrono::milliseconds wait, SessionCallback done);
  ApiResult<SessionRecord> destroySession(const Caller& caller, const std::string& id);
  ApiResult<AgentReply> sessionLogs(const Caller& caller, const std::string& id, const std::string& query);
  std::string pendingReason(const std::string& id) const;

  // Cluster (admin).
  std::vector<AgentSummary> agents() const;
  // GET on an agent's RPC (its alloc-map, say), passed through.
  ApiResult<AgentReply> agentRpcGet(const std::string& agentId, const std::string& pathAndQuery);
  std::map<std::string, SlotType> slotTypes() const;
  ApiResult<KeypairRecord> createKeypair(bool admin);
  std::vector<KeypairRecord> keypairs() const;
  std::optional<KeypairRecord> keypair(const std::string& accessKey) const;

  std::string metricsText() const;
  Metrics& metrics() { return metrics_; }

  // Answers every long poll and stops the threads; call before the HTTP server stops.
  void shutdown();

 private:
  struct Refusal {
    std::string reason;
  };
  struct Waiter {
    Caller caller;
    std::chrono::steady_clock::time_point deadline;
    SessionCallback done;
  };

  Manager(ManagerSettings settings, std::unique_ptr<Store> store, std::string clusterToken, LogSink log);
  Result<void> recover();

  // placement.cpp: the loop, reservations and calls to agents.
  void schedulerLoop();
  void placePending();
  void placeOne(SessionRecord& session);
  void dispatch(std::function<void()> job);
  void dispatchLoop();
  void startOnAgent(const std::string& sessionId);
  void destroyOnAgent(const std::string& sessionId);
  void verifyOnAgent(const std::string& sessionId);
  void retryStalled();

  // agent_tracker.cpp: heartbeats, events, liveness and reconciliation.
  void detectLostAgents();
  void reconcile(AgentView& agent, const protocol::AgentState& state, bool revived);

  // A state change: one store transaction, then memory (callers hold mutex_).
  struct Transition {
    std::vector<SessionRecord> sessions;  // written as they are; final ones leave active_
    std::vector<std::string> reserve;     // sessions whose request is reserved on their agentId
    std::vector<std::string> release;     // reservations ended (allocation deleted)
    std::vector<std::string> suspend;     // reservations not counted while their agent is lost
    std::vector<std::string> resume;      // suspended reservations counted again
    std::function<Result<void>(StoreTransaction&)> extra;  // more writes in the same transaction
  };
  Result<void> commit(Transition transition);
  void finished(const SessionRecord& session);  // queues the answers to its long polls
  // Ends an active session with `status` and frees its reservation, in one transaction.
  void endSession(SessionRecord session, SessionStatus status, std::string reason, std::optional<int> exitCode = {},
                  std::int64_t endedAtMillis = 0);
  // Calls `call(rpcUrl)` for the agent of session `id` with mutex_ released (held again
  // on return, the session's in-flight mark cleared); nullopt when there is no agent to call.
  template <class Call>
  auto callSessionAgent(std::unique_lock<std::mutex>& lock, const std::string& id, Call call)
      -> std::optional<decltype(call(std::string()))>;
  bool visibleTo(const Caller& caller, const SessionRecord& session) const;
  void notifyScheduler();
  void waiterLoop();
  void log(LogLevel level, const std::string& message) const;

  ManagerSettings settings_;
  std::unique_ptr<Store> store_;
  std::string clusterToken_;
  LogSink log_;
  AgentClient agentClient_;
  std::unique_ptr<AgentSelector> selector_;
  mutable Metrics metrics_;

  mutable std::mutex mutex_;
  SlotRegistry registry_;
  std::map<std::string, AgentView> agents_;
  std::map<std::string, SessionRecord> active_;  // sessions not yet final
  std::map<std::string, KeypairRecord> keypairs_;
  std::map<std::string, std::string> pendingReasons_;
  std::map<std::string, std::map<std::string, Refusal>> refusals_;  // session -> agent -> why
  std::set<std::string> inFlight_;                                   // sessions with an agent call running
  std::map<std::string, std::chrono::steady_clock::time_point> retryAt_;
  std::multimap<std::string, Waiter> waiters_;
  // Answers for long polls, given by the waiter thread without holding mutex_ (the
  // callbacks may call back into the manager).
  std::deque<std::pair<SessionCallback, ApiResult<SessionRecord>>> answers_;
  std::set<std::string> unknownSessionsLogged_;

  bool stopping_ = false;
  bool waitersStopping_ = false;
  bool schedulerDirty_ = true;
  std::condition_variable schedulerWake_;
  std::condition_variable dispatchWake_;
  std::condition_variable waiterWake_;
  std::deque<std::function<void()>> jobs_;
  std::thread scheduler_;
  std::thread waiterThread_;
  std::vector<std::thread> dispatchers_;
};

std::string sessionToJson(const SessionRecord& session, const std::string& pendingReason = "");
std::string agentToJson(const AgentSummary& agent, const std::map<std::string, SlotType>& types);
std::int64_t nowMillis();

}  // namespace bai::manager
