// Keeps the agent's plugins honest while it runs: polls their devices' health on a timer
// (an unhealthy device takes no new sessions, a recovered one does again), withdraws a
// plugin whose call hung, and applies new allow/block lists on reload: a plugin no longer
// allowed drains (no new sessions) and is unloaded once no session holds its devices.
#pragma once

#include "agent/agent_config.hpp"
#include "agent/agent_ledger.hpp"
#include "agent/session_records.hpp"
#include "log.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bai::core {

// Its state (health, withdrawn, draining) lives in the ledger. Called from the poll thread
// it owns, from the reload (SIGHUP) thread, and, through unloadDrained, from whichever
// thread ended a session.
class PluginSupervisor {
 public:
  PluginSupervisor(AgentLedger& ledger, SessionRecords& records, LogSink log);
  // Stops the poll thread.
  ~PluginSupervisor();
  PluginSupervisor(const PluginSupervisor&) = delete;
  PluginSupervisor& operator=(const PluginSupervisor&) = delete;

  // Polls once now, then every `period` (at least 50 ms) on its own thread.
  void startPolling(std::chrono::milliseconds period);
  // Ends the poll thread; idempotent.
  void stopPolling();
  // Asks every plugin for its devices' health now; a plugin that hung is withdrawn.
  void pollHealth();

  // Applies the allow/block lists and plugin configs of `next`, also loading plugins
  // installed in plugin-path since the start. Returns the names and keys of the plugins
  // it loaded.
  std::set<std::string> applyPluginLists(const AgentSettings& next);

  // Unloads draining plugins whose devices no session holds any more; the caller holds
  // the ledger's lock and drops what is returned after releasing it.
  UnloadedPlugins unloadDrained(AgentState& state);

  // Names of plugins no longer allowed that still serve sessions.
  std::vector<std::string> drainingPlugins() const;

 private:
  void pollLoop(std::chrono::milliseconds period);
  bool applyHealth(AgentState& state, AcceleratorPlugin* plugin, const Result<std::vector<DeviceHealth>>& report);
  void drainDisallowed(AgentState& state);
  void offerAgain(AgentState& state, AcceleratorPlugin* plugin);
  std::set<std::string> offerLoaded(const std::vector<std::shared_ptr<AcceleratorPlugin>>& loaded);
  void undoPreparedSessions(AgentState& state, AcceleratorPlugin* plugin);

  AgentLedger& ledger_;
  SessionRecords& records_;
  const LogSink log_;

  // Shared with the thread that destroys the supervisor.
  std::mutex pollMutex_;
  std::condition_variable pollWake_;
  bool stopping_ = false;
  std::thread pollThread_;
};

}  // namespace bai::core
