// The agent: allocates a node's devices to sessions, prepares them through the plugins,
// runs them through the session shim, records everything under the state dir so that a
// restart loses nothing, and reports to the manager.
#pragma once

#include "agent/agent_config.hpp"
#include "agent/node_inventory.hpp"
#include "report/event_journal.hpp"
#include "report/reporter.hpp"
#include "runtime/cgroup_limits.hpp"
#include "runtime/session_runner.hpp"

#include <bai/protocol.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <thread>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace bai::core {

// Why a request failed, as the RPC answers it: an HTTP status and an ApiError.
struct AgentError {
  int status = 400;
  protocol::ApiError error;
};

template <class T>
using AgentResult = Result<T, AgentError>;

// What a reload did with the keys that changed.
using config::ReloadReport;

class Agent {
 public:
  // Lines below settings.logLevel are dropped before `log`; reload() may change the level.
  static Result<std::unique_ptr<Agent>> start(AgentSettings settings, std::string clusterToken, LogSink log);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Idempotent by session id: a retried call returns the session as it stands (created = false).
  AgentResult<std::pair<protocol::SessionInfo, bool>> createSession(const protocol::CreateSessionRequest& request);
  AgentResult<protocol::SessionInfo> destroySession(const std::string& id);
  AgentResult<protocol::SessionInfo> session(const std::string& id) const;
  std::vector<protocol::SessionInfo> sessions() const;
  // Bytes [offset, offset + limit) of a session's stdout or stderr log; with `tail`, its
  // last `tail` bytes instead.
  AgentResult<std::string> sessionLogs(const std::string& id, const std::string& stream, std::uint64_t offset,
                                       std::uint64_t limit, std::optional<std::uint64_t> tail = std::nullopt) const;

  std::string allocMapJson() const;
  std::string healthJson() const;
  // Asks every plugin for its devices' health now: unhealthy or gone devices get no new
  // sessions, recovered ones do again; a plugin that hung is withdrawn. Runs on a timer.
  void pollHealth();
  std::string metricsText() const;

  // SIGHUP: applies what can change while sessions run (agent.log-level, the plugin
  // allow/block lists, which also rescans plugin-path) and logs every other changed key
  // as needing a restart. `next` must resolve (agentSettings); if not, nothing changes.
  // A plugin no longer allowed takes no new sessions at once and is unloaded when the
  // last session holding its devices ends; one allowed again before that is offered again.
  Result<ReloadReport> reload(const config::Config& running, const config::Config& next);

  const AgentSettings& settings() const { return settings_; }
  // The agent's sink, at its current level: for the front end's own lines.
  const LogSink& log() const { return log_; }
  LogLevel logLevel() const { return threshold_->get(); }
  // Names of plugins no longer allowed that still serve sessions.
  std::vector<std::string> drainingPlugins() const;
  const std::string& clusterToken() const { return token_; }
  const NodeInventory& inventory() const { return *inventory_; }
  // What the heartbeat carries, and its version.
  protocol::AgentState snapshot() const;
  std::uint64_t digest() const { return digest_.load(); }

 private:
  struct Session {
    protocol::CreateSessionRequest request;
    NodeAllocation allocation;
    protocol::SessionInfo info;
    std::vector<std::string> preparedPlugins;  // keys whose prepare_session succeeded
    bool destroyRequested = false;
    bool released = false;  // allocation freed and plugins released: exactly once
  };

  Agent(AgentSettings settings, std::string token, LogSink log);
  Result<void> recover();
  void onExit(const std::string& id, const ExitStatus& status);
  // Frees the allocation and releases the plugins; caller holds mutex_.
  void releaseResources(Session& session);
  Result<void> persist(const Session& session) const;
  std::filesystem::path sessionDir(const std::string& id) const;
  void recordEvent(protocol::EventKind kind, const std::string& id, std::optional<int> exitCode, std::string reason);
  void changed() { ++digest_; }
  void healthLoop();
  // Plugins this agent offers now and that take new sessions; caller holds mutex_.
  std::vector<std::shared_ptr<AcceleratorPlugin>> activePluginsLocked() const;
  bool drainingLocked(const AcceleratorPlugin* plugin) const;
  // Returns the names and keys of the plugins it loaded.
  std::set<std::string> applyPluginLists(const AgentSettings& next);
  // Unloads draining plugins whose devices no session holds any more; caller holds
  // mutex_ and drops what is returned after releasing it (destroying runs plugin code).
  std::vector<std::shared_ptr<AcceleratorPlugin>> unloadDrainedLocked();

  AgentSettings settings_;
  std::string token_;
  std::shared_ptr<LogThreshold> threshold_;
  LogSink log_;
  std::unique_ptr<NodeInventory> inventory_;
  std::unique_ptr<LimitsBackend> limits_;
  std::unique_ptr<EventJournal> journal_;
  std::unique_ptr<SessionRunner> runner_;
  std::unique_ptr<Reporter> reporter_;

  mutable std::mutex mutex_;
  std::map<std::string, Session> sessions_;
  // plugin key -> device id -> latest report; guarded by mutex_.
  std::map<std::string, std::map<std::string, protocol::DeviceHealthReport>> health_;
  std::vector<std::string> withdrawn_;
  std::vector<AcceleratorPlugin*> draining_;  // no longer allowed; loaded while sessions hold their devices
  std::mutex reloadMutex_;                    // one reload at a time

  std::mutex healthMutex_;
  std::condition_variable healthWake_;
  bool stopping_ = false;
  std::thread healthThread_;
  std::atomic<std::uint64_t> digest_{1};
  std::atomic<std::uint64_t> sessionsStarted_{0}, sessionsFailed_{0};
};

// The daemon's SIGHUP: loads `file` with the command line's `overrides` as at start. A
// config that does not load or resolve is refused, its error logged, and nothing changes;
// otherwise Agent::reload applies it and `running` becomes it.
Result<ReloadReport> reloadAgentConfig(Agent& agent, config::Config& running, const std::string& file,
                                       const std::map<std::string, std::string>& overrides);

}  // namespace bai::core
