// A session from request to end: allocates its devices, has the plugins prepare them,
// applies the limits, starts it through the runtime, records every step under the state
// dir, frees everything exactly once when it ends, and after a restart rebuilds what the
// sessions of the previous agent process hold. Answers with data and AgentError kinds.
#pragma once

#include "agent/agent_error.hpp"
#include "agent/agent_ledger.hpp"
#include "agent/session_identity.hpp"
#include "agent/session_isolation.hpp"
#include "agent/session_records.hpp"
#include "report/event_journal.hpp"
#include "runtime/cgroup_limits.hpp"
#include "runtime/session_runner.hpp"

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

// How the lifecycle runs sessions' processes: SessionRunner in the daemon (ShimProcesses),
// a fake in tests. Exits come back through the callback given to the factory below.
class SessionProcesses {
 public:
  virtual ~SessionProcesses() = default;
  // Returns the pid of what runs the session; a command that cannot run is an exit.
  virtual Result<std::int64_t> start(const RunSpec& spec) = 0;
  virtual Result<void> destroy(const std::string& sessionId, std::chrono::milliseconds grace) = 0;
  // Watches again a session started by an earlier agent process.
  virtual Result<void> adopt(const std::string& sessionId, const std::filesystem::path& sessionDir) = 0;
};

// Sessions run through bai-session-shim (SessionRunner).
class ShimProcesses final : public SessionProcesses {
 public:
  ShimProcesses(std::filesystem::path shimPath, LogSink log, SessionRunner::ExitCallback onExit)
      : runner_(std::move(shimPath), std::move(log), std::move(onExit)) {}
  Result<std::int64_t> start(const RunSpec& spec) override { return runner_.start(spec); }
  Result<void> destroy(const std::string& sessionId, std::chrono::milliseconds grace) override {
    return runner_.destroy(sessionId, grace);
  }
  Result<void> adopt(const std::string& sessionId, const std::filesystem::path& sessionDir) override {
    return runner_.adopt(sessionId, sessionDir);
  }

 private:
  SessionRunner runner_;
};

struct SessionLifecycleOptions {
  std::string agentId;  // named in refusals
  IdentityPolicy identity;       // whose sessions this agent runs
  IsolationSettings isolation;   // limits and hidden paths every session gets
  std::chrono::milliseconds destroyGrace{10000};
  LogSink log;
  // Builds the processes with the lifecycle's exit callback, which they call on their own
  // thread from then on (during recover() too).
  std::function<std::unique_ptr<SessionProcesses>(SessionRunner::ExitCallback)> makeProcesses;
  // Called with the ledger locked after a session let go of its resources: the plugin
  // supervisor unloads draining plugins nothing holds any more. May be empty.
  std::function<UnloadedPlugins(AgentState&)> afterRelease;
  // Called after a session event is journalled, without the lock: the reporter sends it now.
  std::function<void()> eventJournalled;
};

// Owns no session state itself: the sessions live in the ledger. RPC threads call the
// public functions; the processes' thread calls onExit. Only counters are its own.
class SessionLifecycle {
 public:
  SessionLifecycle(SessionLifecycleOptions options, AgentLedger& ledger, SessionRecords& records,
                   LimitsBackend& limits, EventJournal& journal);
  // Stops watching the processes; sessions keep running for the next agent to adopt.
  ~SessionLifecycle();
  SessionLifecycle(const SessionLifecycle&) = delete;
  SessionLifecycle& operator=(const SessionLifecycle&) = delete;

  // Once, before any request: takes back what the recorded sessions hold and hands their
  // processes back to the runtime, which reports those that ended meanwhile.
  void recover();

  // Idempotent by session id: a retried call returns the session as it stands (created = false).
  AgentResult<std::pair<protocol::SessionInfo, bool>> create(const protocol::CreateSessionRequest& request);
  AgentResult<protocol::SessionInfo> destroy(const std::string& id);
  AgentResult<protocol::SessionInfo> session(const std::string& id) const;
  std::vector<protocol::SessionInfo> sessions() const;
  // Bytes [offset, offset + limit) of a session's stdout or stderr log; with `tail`, its
  // last `tail` bytes instead; a page at most protocol::kLogPageBytes long.
  AgentResult<LogPage> logs(const std::string& id, const std::string& stream, std::uint64_t offset, std::uint64_t limit,
                            std::optional<std::uint64_t> tail) const;

  std::uint64_t sessionsStarted() const { return sessionsStarted_.load(); }
  std::uint64_t sessionsFailed() const { return sessionsFailed_.load(); }

 private:
  using Access = AgentLedger::Access<AgentState>;
  struct Prepared;

  // Runs on the processes' thread.
  void onExit(const std::string& id, const ExitStatus& status);
  AgentResult<protocol::DeviceAllocation> reserve(Access& state, const protocol::CreateSessionRequest& request);
  Prepared prepare(const protocol::CreateSessionRequest& request, const protocol::SessionOwner& owner,
                   std::vector<std::pair<std::shared_ptr<AcceleratorPlugin>, protocol::DeviceAllocation>> parts);
  std::filesystem::path workDirOf(const std::string& id) const;
  void keepPrepared(Access& state, const std::string& id, const Prepared& prepared);
  Result<std::int64_t> launch(const protocol::CreateSessionRequest& request, Prepared& prepared);
  AgentResult<std::pair<protocol::SessionInfo, bool>> settleStart(Access& state, const std::string& id,
                                                                  const Result<std::int64_t>& started);
  // Frees the allocation, releases the plugins and the limits, saves the record and lets
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
  LimitsBackend& limits_;
  EventJournal& journal_;
  std::atomic<std::uint64_t> sessionsStarted_{0}, sessionsFailed_{0};
  // Last: its thread calls onExit until it is destroyed.
  std::unique_ptr<SessionProcesses> processes_;
};

}  // namespace bai::core
