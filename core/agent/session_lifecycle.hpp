// A session from request to end: allocates its devices, has the plugins prepare them,
// starts it through its runtime (a process, or a container when it names an image), records every step under the state
// dir, frees everything exactly once when it ends, and after a restart rebuilds what the
// sessions of the previous agent process hold. Answers with data and AgentError kinds.
#pragma once

#include "agent/agent_error.hpp"
#include "agent/agent_ledger.hpp"
#include "agent/session_identity.hpp"
#include "agent/session_isolation.hpp"
#include "agent/session_records.hpp"
#include "report/event_journal.hpp"
#include "agent/service_ports.hpp"
#include "agent/session_runtime.hpp"

#include <bai/protocol.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bai::core {

struct SessionLifecycleOptions {
  std::string agentId;  // named in refusals
  IdentityPolicy identity;       // whose sessions this agent runs
  IsolationSettings isolation;   // limits and hidden paths every session gets
  std::chrono::milliseconds destroyGrace{10000};
  LogSink log;
  // Builds the runtimes with the lifecycle's exit callback, which they call on their own
  // threads from then on (during recover() too).
  RuntimeFactory makeRuntimes;
  // Called with the ledger locked after a session let go of its resources: the plugin
  // supervisor unloads draining plugins nothing holds any more. May be empty.
  std::function<UnloadedPlugins(AgentState&)> afterRelease;
  // Called after a session event is journalled, without the lock: the reporter sends it now.
  std::function<void()> eventJournalled;
  // Ports for process sessions' services; may be null (no services then).
  ServicePortPool* servicePorts = nullptr;
  std::size_t replayBytes = 64 * 1024;  // interactive.replay-bytes
};

// Owns no session state itself: the sessions live in the ledger. RPC threads call the
// public functions; the runtimes' threads call onExit. Only counters are its own.
class SessionLifecycle {
 public:
  SessionLifecycle(SessionLifecycleOptions options, AgentLedger& ledger, SessionRecords& records,
                   EventJournal& journal);
  // Stops watching the sessions; they keep running for the next agent to adopt.
  ~SessionLifecycle();
  SessionLifecycle(const SessionLifecycle&) = delete;
  SessionLifecycle& operator=(const SessionLifecycle&) = delete;

  // Once, before any request: takes back what the recorded sessions hold and hands them
  // back to their runtimes, which report those that ended meanwhile; then each runtime
  // removes what it keeps for sessions no longer active (containers of ended sessions).
  void recover();

  // Each runtime's report and the images of those that have any, for the heartbeat.
  std::vector<protocol::RuntimeReport> runtimeReports() const;
  std::vector<protocol::ImageSummary> images() const;
  // Reads the engines' state again (POST /v1/images/refresh).
  void refreshRuntimes();

  // Idempotent by session id: a retried call returns the session as it stands (created = false).
  AgentResult<std::pair<protocol::SessionInfo, bool>> create(const protocol::CreateSessionRequest& request);
  AgentResult<protocol::SessionInfo> destroy(const std::string& id);
  AgentResult<protocol::SessionInfo> session(const std::string& id) const;
  std::vector<protocol::SessionInfo> sessions() const;
  // Bytes [offset, offset + limit) of a session's stdout or stderr log; with `tail`, its
  // last `tail` bytes instead; a page at most protocol::kLogPageBytes long.
  AgentResult<LogPage> logs(const std::string& id, const std::string& stream, std::uint64_t offset, std::uint64_t limit,
                            std::optional<std::uint64_t> tail) const;

  // A running session's console, an exec in it or a connection to its service.
  AgentResult<std::unique_ptr<SessionStream>> openStream(const std::string& id, const StreamTarget& target);

  std::uint64_t sessionsStarted() const { return sessionsStarted_.load(); }
  std::uint64_t sessionsFailed() const { return sessionsFailed_.load(); }

 private:
  using Access = AgentLedger::Access<AgentState>;
  struct Prepared;

  // Run on a runtime's thread.
  void onExit(const std::string& id, const ExitStatus& status);
  void onStarted(const std::string& id, std::int64_t pid);
  // Preparing -> Running with its pid and start time; false when it is no longer preparing.
  bool markRunning(SessionRecord& session, std::int64_t pid);
  // The runtime a request needs (containers for an image, processes otherwise), refused
  // when the agent lacks it or it is unavailable; runtimeOf: null when the agent lacks it.
  AgentResult<SessionRuntime*> runtimeFor(const protocol::CreateSessionRequest& request) const;
  SessionRuntime* runtimeOf(const protocol::CreateSessionRequest& request) const;
  AgentResult<protocol::DeviceAllocation> reserve(Access& state, const protocol::CreateSessionRequest& request);
  Prepared prepare(const protocol::CreateSessionRequest& request, const protocol::SessionOwner& owner,
                   SessionRuntime& runtime,
                   std::vector<std::pair<std::shared_ptr<AcceleratorPlugin>, protocol::DeviceAllocation>> parts);
  std::filesystem::path workDirOf(const std::string& id) const;
  Result<std::vector<protocol::ServicePort>> assignServicePorts(const protocol::CreateSessionRequest& request,
                                                                const SessionRuntime& runtime);
  std::vector<std::uint16_t> allocatedServicePorts(const SessionRecord& session) const;
  void holdServicePorts(const SessionRecord& session);
  void giveBackServicePorts(const SessionRecord& session);
  void keepPrepared(Access& state, const std::string& id, const Prepared& prepared);
  Result<std::int64_t> launch(const protocol::CreateSessionRequest& request, SessionRuntime& runtime,
                              Prepared& prepared);
  AgentResult<std::pair<protocol::SessionInfo, bool>> settleStart(Access& state, const std::string& id,
                                                                  const Result<std::int64_t>& started);
  // Frees the allocation, releases the plugins and the runtime's hold, saves the record and lets
  // the supervisor unload what drained; returns what to drop once unlocked.
  UnloadedPlugins release(Access& state, SessionRecord& session);
  void freeResources(AgentState& state, SessionRecord& session);
  void restoreAllocation(AgentState& state, SessionRecord& session);
  // Journals the event and has the reporter send it; call without the ledger's lock.
  void recordEvent(protocol::EventKind kind, const std::string& id, std::optional<int> exitCode, std::string reason);
  // Journals only (the journal has its own lock, so this may run under the ledger's);
  // false, logged, when it could not be written.
  bool journalEvent(protocol::EventKind kind, const std::string& id, std::optional<int> exitCode, std::string reason);

  const SessionLifecycleOptions options_;
  AgentLedger& ledger_;
  SessionRecords& records_;
  EventJournal& journal_;
  std::atomic<std::uint64_t> sessionsStarted_{0}, sessionsFailed_{0};
  // Last: their threads call onExit until they are destroyed.
  std::vector<std::unique_ptr<SessionRuntime>> runtimes_;
};

}  // namespace bai::core
