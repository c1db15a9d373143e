// The agent: allocates a node's devices to sessions, prepares them through the plugins,
// runs them through the session shim, records everything under the state dir so that a
// restart loses nothing, and reports to the manager. It composes named parts, each of
// which a test can build alone:
//   AgentLedger       the in-memory state and its one mutex
//   SessionLifecycle  create, destroy, exit, recovery after a restart, logs
//   PluginSupervisor  health polling, withdrawing hung plugins, draining, reload
// and answers with data (agent_figures.hpp); agent_api.cpp turns it into HTTP.
#pragma once

#include "agent/agent_config.hpp"
#include "agent/agent_error.hpp"
#include "agent/agent_figures.hpp"
#include "agent/agent_ledger.hpp"
#include "agent/plugin_supervisor.hpp"
#include "agent/session_lifecycle.hpp"
#include "agent/session_records.hpp"
#include "agent/stream_bridge.hpp"
#include "report/event_journal.hpp"
#include "report/reporter.hpp"
#include "runtime/cgroup_limits.hpp"

#include <bai/protocol.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace bai::core {

// What a reload did with the keys that changed.
using config::ReloadReport;

// What the agent gives its runtimes when it builds them.
struct RuntimeContext {
  SessionExitCallback onExit;
  LimitsBackend& limits;         // the agent's, for process sessions' cgroups
  std::function<void()> changed;  // a runtime's availability or images changed: report it
  SessionStartedCallback onStarted{};
};

// What an agent runs with, built by startAgent (agent_startup.hpp) or by a test.
struct AgentParts {
  std::unique_ptr<NodeInventory> inventory;  // its plugins loaded
  std::unique_ptr<LimitsBackend> limits;
  std::unique_ptr<EventJournal> journal;
  std::function<std::vector<std::unique_ptr<SessionRuntime>>(RuntimeContext)> makeRuntimes;
};

struct StreamOpening {
  StreamBridges::Place place;
  std::unique_ptr<SessionStream> stream;
};

class Agent {
 public:
  // `log` is already filtered by `threshold`, which reload() adjusts.
  Agent(AgentSettings settings, std::string clusterToken, std::shared_ptr<LogThreshold> threshold, LogSink log,
        AgentParts parts);
  // Stops polling and reporting; sessions keep running for the next agent.
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Start-up, in this order, before serving: what the recorded sessions hold is taken
  // back; the reporter (which reads snapshot() and digest()) is handed over; polling starts.
  void recover();
  void startReporting(std::unique_ptr<Reporter> reporter);
  void startSupervision();

  // Idempotent by session id: a retried call returns the session as it stands (created = false).
  AgentResult<std::pair<protocol::SessionInfo, bool>> createSession(const protocol::CreateSessionRequest& request);
  AgentResult<protocol::SessionInfo> destroySession(const std::string& id);
  AgentResult<protocol::SessionInfo> session(const std::string& id) const;
  std::vector<protocol::SessionInfo> sessions() const;
  // Bytes [offset, offset + limit) of a session's stdout or stderr log; with `tail`, its
  // last `tail` bytes instead.
  AgentResult<LogPage> sessionLogs(const std::string& id, const std::string& stream, std::uint64_t offset,
                                   std::uint64_t limit, std::optional<std::uint64_t> tail = std::nullopt) const;

  // A place among the session's streams and the stream itself (its console, an exec, a
  // service connection), opened before the client's upgrade is accepted so that a
  // refusal is an HTTP error; then bridged to the client's WebSocket.
  AgentResult<StreamOpening> openStream(const std::string& id, const StreamTarget& target);
  void bridgeStream(StreamOpening opening, std::shared_ptr<ws::WebSocket> socket);
  // Before the RPC server stops: ends the open streams while their sockets can still say so.
  void closeStreams() { streams_.closeAll(); }

  AllocationFigures allocation() const;
  AgentHealth health() const;
  AgentMetrics metrics() const;
  // Reads the runtimes' engines again (availability, images) and reports what changed.
  protocol::RuntimeInventory refreshRuntimes();

  // Asks every plugin for its devices' health now: unhealthy or gone devices get no new
  // sessions, recovered ones do again; a plugin that hung is withdrawn. Runs on a timer.
  void pollHealth() { supervisor_.pollHealth(); }

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
  std::vector<std::string> drainingPlugins() const { return supervisor_.drainingPlugins(); }
  const std::string& clusterToken() const { return token_; }
  // For tests; not synchronised with a reload.
  const NodeInventory& inventory() const { return ledger_.inventoryUnlocked(); }
  // What the heartbeat carries, and its version.
  protocol::AgentState snapshot() const;
  std::uint64_t digest() const { return ledger_.digest(); }

 private:
  void notifyReporter();
  // A runtime's availability or images changed: the next heartbeat sends the full state.
  void runtimeChanged();

  // Fixed after construction, except the reloadable settings, which reload() sets under
  // reloadMutex_ (one reload at a time).
  AgentSettings settings_;
  const std::string token_;
  const std::shared_ptr<LogThreshold> threshold_;
  const LogSink log_;
  std::mutex reloadMutex_;

  const std::unique_ptr<LimitsBackend> limits_;
  const std::unique_ptr<EventJournal> journal_;
  AgentLedger ledger_;
  SessionRecords records_;
  PluginSupervisor supervisor_;
  // Shared with the threads that journal session events; set once by startReporting.
  mutable std::mutex reporterMutex_;
  std::unique_ptr<Reporter> reporter_;
  ServicePortPool servicePorts_;
  // Last but one: destroyed first, so that no session exit arrives once the rest goes.
  SessionLifecycle lifecycle_;
  // Last: the streams end before the runtimes they read go.
  StreamBridges streams_;
};

// The daemon's SIGHUP: loads `file` with the command line's `overrides` as at start. A
// config that does not load or resolve is refused, its error logged, and nothing changes;
// otherwise Agent::reload applies it and `running` becomes it.
Result<ReloadReport> reloadAgentConfig(Agent& agent, config::Config& running, const std::string& file,
                                       const std::map<std::string, std::string>& overrides);

}  // namespace bai::core
