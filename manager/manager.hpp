// The manager's core: cluster state in memory over the store, the placement loop, the
// dispatch of starts and stops to agents, liveness, and long polls. The HTTP layer
// (manager_api) turns requests into these calls; everything here is thread-safe.
#pragma once

#include "agent_client.hpp"
#include "cluster.hpp"
#include "group_scheduler.hpp"
#include "log_sink.hpp"
#include "manager_config.hpp"
#include "metrics.hpp"
#include "quota.hpp"
#include "slot_registry.hpp"
#include "store/store.hpp"

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include <nlohmann/json_fwd.hpp>

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

// What a reload did with the keys that changed.
using config::ReloadReport;

// The keys a running manager applies on SIGHUP; a change of any other key is logged as
// needing a restart.
const std::vector<std::string>& managerReloadableKeys();

class Manager {
 public:
  static Result<std::unique_ptr<Manager>> start(ManagerSettings settings, std::unique_ptr<Store> store,
                                                std::string clusterToken, LogSink log);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Agents (the API layer has checked the cluster token). A digest-only heartbeat, or a
  // full report that changes nothing stored, is answered at once; a full report that
  // changes a known agent's row is answered once that row is stored, by one group commit
  // with the other agents' reports that arrived meanwhile (stateWriterLoop). `done` runs
  // exactly once, without the manager's lock held, maybe on another thread.
  using HeartbeatCallback = std::function<void(ApiResult<protocol::HeartbeatReply>)>;
  void heartbeat(const std::string& agentId, const protocol::Heartbeat& heartbeat, HeartbeatCallback done);
  // The same, waiting for the answer.
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
  std::vector<KeypairRecord> keypairs() const;
  std::optional<KeypairRecord> keypair(const std::string& accessKey) const;
  // 404 when `resourcePolicy` (empty: none) is unknown.
  ApiResult<KeypairRecord> createKeypair(bool admin, const std::string& resourcePolicy = "");
  ApiResult<KeypairRecord> setKeypairResourcePolicy(const std::string& accessKey, const std::string& resourcePolicy);

  // Scaling groups and resource policies (admin). Create and patch take the JSON of
  // admin_records.hpp: create refuses a name in use (409); patch overlays the given
  // fields on the stored record. Upsert takes a checked record as it is.
  ApiResult<ScalingGroupRecord> createScalingGroup(const nlohmann::json& doc);
  ApiResult<ScalingGroupRecord> patchScalingGroup(const std::string& name, const nlohmann::json& fields);
  ApiResult<ScalingGroupRecord> upsertScalingGroup(ScalingGroupRecord group);
  std::vector<ScalingGroupRecord> scalingGroups() const;
  std::optional<ScalingGroupRecord> scalingGroup(const std::string& name) const;
  ApiResult<ResourcePolicyRecord> createResourcePolicy(const nlohmann::json& doc);
  ApiResult<ResourcePolicyRecord> patchResourcePolicy(const std::string& name, const nlohmann::json& fields);
  ApiResult<ResourcePolicyRecord> upsertResourcePolicy(ResourcePolicyRecord policy);
  std::vector<ResourcePolicyRecord> resourcePolicies() const;
  std::optional<ResourcePolicyRecord> resourcePolicy(const std::string& name) const;

  std::string metricsText() const;
  Metrics& metrics() { return metrics_; }

  // SIGHUP: applies manager.log-level, manager.max-wait, agents.heartbeat-timeout,
  // scheduler.period and scheduler.candidate-window now, and logs every other changed key
  // as needing a restart. `next` must resolve (managerSettings); if not, nothing changes.
  Result<ReloadReport> reload(const config::Config& running, const config::Config& next);
  // The manager's sink, at its current level: for the front end's own lines.
  const LogSink& logSink() const { return log_; }
  LogLevel logLevel() const { return threshold_->get(); }

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

  // manager_admin.cpp: scaling groups, resource policies and enqueue admission.
  Result<void> loadAdminRecords(StoreTransaction& tx);  // during recover()
  // The policy of keypair `accessKey`; nullptr: none, nothing limited. Callers hold mutex_.
  const ResourcePolicyRecord* policyOfOwnerLocked(const std::string& accessKey) const;
  // nullptr when the group has no record (its defaults apply). Callers hold mutex_.
  const ScalingGroupRecord* scalingGroupLocked(const std::string& name) const;
  // Why a new session of `owner` in `group` is refused at enqueue (inactive group, max
  // pending); nullopt when it is not. Callers hold mutex_.
  std::optional<ApiFailure> admissionRefusalLocked(const std::string& owner, const std::string& group) const;
  ApiResult<ScalingGroupRecord> storeScalingGroupLocked(ScalingGroupRecord group);
  ApiResult<ResourcePolicyRecord> storeResourcePolicyLocked(ResourcePolicyRecord policy);

  // What sessions hold, per owner and group, during one placement round.
  struct RoundUsage {
    std::map<std::string, OwnerUsage> byOwner;
    std::map<std::string, std::map<std::string, ResourceSlot>> heldInGroup;  // group -> owner -> held
    std::map<std::string, std::uint32_t> sharedDevices;  // agent -> sessions there on fractional slots
    std::map<std::string, std::string> blockedBy;        // group -> the session at the head of its line

    void hold(const SessionRecord& session);  // counts a session that holds its request
  };

  // placement.cpp: the loop, reservations and calls to agents.
  void schedulerLoop();
  void placePending();
  std::vector<std::string> sequence(GroupScheduler& group, std::vector<std::string> ids, const RoundUsage& usage);
  void placeOne(GroupScheduler& group, const SessionRecord& session, RoundUsage& usage);
  bool hasPriority(GroupScheduler& group, const SessionRecord& session);
  RoundUsage roundUsage() const;
  ScalingGroupRecord groupRecord(const std::string& name) const;
  GroupScheduler& groupFor(const std::string& name);
  void syncGroups();
  void refreshIndexes();
  void dispatch(std::function<void()> job);
  void dispatchLoop();
  void startOnAgent(const std::string& sessionId);
  void destroyOnAgent(const std::string& sessionId);
  void verifyOnAgent(const std::string& sessionId);
  void retryStalled();

  // agent_tracker.cpp: heartbeats, events, liveness and reconciliation.
  // Applies a heartbeat under mutex_; nullopt when `done` was queued for the group commit.
  std::optional<ApiResult<protocol::HeartbeatReply>> applyHeartbeat(const std::string& agentId,
                                                                    const protocol::Heartbeat& heartbeat,
                                                                    HeartbeatCallback& done);
  void stateWriterLoop();
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
  std::shared_ptr<LogThreshold> threshold_;  // lines below it are dropped before the daemon's sink
  LogSink log_;
  AgentClient agentClient_;
  std::unique_ptr<PolicyCatalog> policies_;
  mutable Metrics metrics_;

  mutable std::mutex mutex_;
  SlotRegistry registry_;
  std::map<std::string, AgentView> agents_;
  std::map<std::string, SessionRecord> active_;  // sessions not yet final
  std::map<std::string, KeypairRecord> keypairs_;
  std::map<std::string, ScalingGroupRecord> scalingGroups_;
  std::map<std::string, ResourcePolicyRecord> resourcePolicies_;
  std::map<std::string, std::string> pendingReasons_;
  std::map<std::string, std::map<std::string, Refusal>> refusals_;  // session -> agent -> why
  std::set<std::string> inFlight_;                                   // sessions with an agent call running
  std::map<std::string, std::chrono::steady_clock::time_point> retryAt_;
  std::multimap<std::string, Waiter> waiters_;
  // Answers for long polls, given by the waiter thread without holding mutex_ (the
  // callbacks may call back into the manager).
  std::deque<std::pair<SessionCallback, ApiResult<SessionRecord>>> answers_;
  std::set<std::string> unknownSessionsLogged_;
  std::map<std::string, GroupScheduler> groups_;
  std::set<std::string> dirtyAgents_;                 // figures changed since their index entry
  // Agents whose changed row waits for the state writer, with the heartbeats to answer then.
  std::map<std::string, std::vector<HeartbeatCallback>> unsavedAgents_;
  std::chrono::steady_clock::time_point nextLostCheck_;  // detectLostAgents runs at most this often
  std::chrono::steady_clock::time_point lastRound_;      // when the last scheduler round began
  std::size_t lastRoundPending_ = 0;                     // how many sessions it found pending
  std::map<std::string, std::string> indexedGroup_;  // agent -> the group whose index holds it
  CandidateWindow window_;                            // reused by every decision

  bool stopping_ = false;
  bool waitersStopping_ = false;
  bool schedulerDirty_ = true;
  std::condition_variable schedulerWake_;
  std::condition_variable dispatchWake_;
  std::condition_variable waiterWake_;
  std::condition_variable stateWriterWake_;
  std::deque<std::function<void()>> jobs_;
  std::thread scheduler_;
  std::thread waiterThread_;
  std::thread stateWriter_;
  std::vector<std::thread> dispatchers_;
};

// The daemon's SIGHUP: loads `file` with the command line's `overrides` as at start. A
// config that does not load or resolve is refused, its error logged, and nothing changes;
// otherwise Manager::reload applies it and `running` becomes it.
Result<ReloadReport> reloadManagerConfig(Manager& manager, config::Config& running, const std::string& file,
                                         const std::map<std::string, std::string>& overrides);

std::string sessionToJson(const SessionRecord& session, const std::string& pendingReason = "");
std::string agentToJson(const AgentSummary& agent, const std::map<std::string, SlotType>& types);
std::int64_t nowMillis();

}  // namespace bai::manager
