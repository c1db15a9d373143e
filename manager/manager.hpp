// The manager: the composition root that builds its parts around one Ledger and runs
// their threads, and the one surface the HTTP layer (manager_api) and tests call.
//
//   Ledger            the cluster state, its only mutex, commit() to the store
//   AgentTracker      heartbeats, events, LOST, reconcile, group commit (writer thread)
//   PlacementRound    sequencer -> index -> selector -> reservation (scheduler thread)
//   SchedulerLoop     the scheduler thread: lost check, retries, placement rounds
//   SessionLifecycle  start / stop / verify on agents, and their answers
//   AgentDispatcher   every call to an agent (its own threads, per-agent lanes)
//   SessionService    the user's sessions; Waiters: long polls (waiter thread)
//   AdminService      keypairs, scaling groups, resource policies
//   InteractiveStreams terminals, execs and service tunnels relayed to agents
//   VfolderService    storage folders on storage proxies, their shares and grants
//
// Everything here is thread-safe; domain errors are kinds (domain_error.hpp).
#pragma once

#include "admin_service.hpp"
#include "agent_dispatcher.hpp"
#include "agent_tracker.hpp"
#include "interactive_streams.hpp"
#include "ledger.hpp"
#include "manager_config.hpp"
#include "placement_round.hpp"
#include "scheduler_loop.hpp"
#include "session_lifecycle.hpp"
#include "session_service.hpp"
#include "waiters.hpp"

#include <memory>

namespace bai::manager {

struct AgentSummary {
  AgentRecord record;
  double secondsSinceHeartbeat = 0;
};

// What /metrics reports of the state, read under the ledger's lock.
struct ClusterFigures {
  std::map<std::string, int> agentsByStatus;                        // "ALIVE", "LOST"
  std::map<std::string, std::pair<Quantity, Quantity>> slotsOfLive;  // slot -> capacity, used
  std::map<SessionStatus, int> activeSessions;
  std::size_t relayedStreams = 0;       // terminals, execs and tunnels open now
  std::size_t relayQueuedBytes = 0;     // what they hold towards slow peers
};

using config::ReloadReport;

// The group of sessions and agents that name none.
inline constexpr const char* kDefaultScalingGroup = "default";

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

  SessionService& sessions() { return sessions_; }
  AdminService& admin() { return admin_; }
  VfolderService& vfolders() { return vfolders_; }
  AgentTracker& tracker() { return tracker_; }
  InteractiveStreams& interactive() { return interactive_; }

  // Agents (the API layer has checked the cluster token); see AgentTracker.
  using HeartbeatCallback = AgentTracker::HeartbeatCallback;
  void heartbeat(const std::string& agentId, const protocol::Heartbeat& heartbeat, HeartbeatCallback done) {
    tracker_.heartbeat(agentId, heartbeat, std::move(done));
  }
  // The same, waiting for the answer.
  Outcome<protocol::HeartbeatReply> heartbeat(const std::string& agentId, const protocol::Heartbeat& heartbeat);
  Outcome<protocol::EventAck> events(const std::string& agentId, const protocol::EventBatch& batch) {
    return tracker_.events(agentId, batch);
  }

  // Sessions; see SessionService.
  // Its mounts resolved first (404 or 403 before anything is queued).
  Outcome<SessionRecord> createSession(const Caller& caller, const NewSession& request) {
    auto mounts = vfolders_.resolveMounts(caller, request.mounts);
    if (!mounts) return Failure{mounts.error()};
    return sessions_.create(caller, request, std::move(*mounts));
  }
  Outcome<SessionRecord> session(const Caller& caller, const std::string& id) { return sessions_.get(caller, id); }
  Outcome<SessionRecord> destroySession(const Caller& caller, const std::string& id) { return sessions_.destroy(caller, id); }
  std::string pendingReason(const std::string& id) const { return sessions_.pendingReason(id); }

  // Cluster (admin).
  std::vector<AgentSummary> agents() const;
  // GET on an agent's RPC (its alloc-map, say), passed through; `done` runs once.
  void agentRpcGet(const std::string& agentId, const std::string& pathAndQuery, AgentDispatcher::ReplyCallback done);
  // Asks the agent to read its engine again (POST /v1/images/refresh, through the
  // dispatcher), stores its runtimes and images and answers its record; `done` runs once.
  using AgentCallback = std::function<void(Outcome<AgentRecord>)>;
  void refreshAgentImages(const std::string& agentId, AgentCallback done);
  std::map<std::string, SlotType> slotTypes() const;
  ClusterFigures figures() const;
  Metrics& metrics() { return metrics_; }
  Store& store() { return ledger_.store(); }  // for records outside the cluster state (request nonces)

  // SIGHUP: applies manager.log-level, manager.max-wait, agents.heartbeat-timeout,
  // scheduler.period, scheduler.candidate-window, scheduler.default-session-slots and
  // scheduler.max-pending-per-keypair now, and logs every other changed key
  // as needing a restart. `next` must resolve (managerSettings); if not, nothing changes.
  Result<ReloadReport> reload(const config::Config& running, const config::Config& next);
  // The manager's sink, at its current level: for the front end's own lines.
  const LogSink& logSink() const { return log_; }
  LogLevel logLevel() const { return threshold_->get(); }

  // Answers every long poll and stops the threads; call before the HTTP server stops.
  void shutdown();

 private:
  Manager(const ManagerSettings& settings, std::unique_ptr<Store> store, std::string clusterToken, LogSink log,
          std::shared_ptr<LogThreshold> threshold, std::unique_ptr<PolicyCatalog> policies);
  Result<void> createDefaultGroup(const ManagerSettings& settings);
  void resumeInterruptedCalls();
  void log(LogLevel level, const std::string& message) const;
  // The agent's RPC URL; empty for an unknown agent.
  std::string rpcUrlOf(const std::string& agentId) const;

  std::shared_ptr<LogThreshold> threshold_;  // lines below it are dropped before the daemon's sink
  LogSink log_;
  std::unique_ptr<PolicyCatalog> policies_;
  mutable Metrics metrics_;
  Ledger ledger_;
  AgentDispatcher dispatcher_;
  Waiters waiters_;
  SessionLifecycle lifecycle_;
  AgentTracker tracker_;
  PlacementRound round_;
  SchedulerLoop scheduler_;
  SessionService sessions_;
  AdminService admin_;
  VfolderService vfolders_;
  InteractiveStreams interactive_;
  bool stopped_ = false;
};

// The daemon's SIGHUP: loads `file` with the command line's `overrides` as at start. A
// config that does not load or resolve is refused, its error logged, and nothing changes;
// otherwise Manager::reload applies it and `running` becomes it.
Result<ReloadReport> reloadManagerConfig(Manager& manager, config::Config& running, const std::string& file,
                                         const std::map<std::string, std::string>& overrides);

}  // namespace bai::manager
