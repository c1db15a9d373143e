// Agents as the manager sees them: registration and heartbeats, session events, the
// group commit of agents' changed rows, LOST after silence, and reconciliation of what
// an agent runs with what the ledger says.
//
// Threads: heartbeat() and events() run on API threads; detectLost() on the scheduler
// thread; the state writer is this part's own thread. unsaved_ and unknownLogged_ are
// guarded by the ledger's lock; the store is read for reconciliation without it.
#pragma once

#include "domain_error.hpp"
#include "ledger.hpp"
#include "session_lifecycle.hpp"

#include <bai/protocol.hpp>

#include <condition_variable>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bai::manager {

// An agent's runtimes and images as a full report or a refresh gave them; an empty list
// of runtimes reads as one available "process" runtime.
void takeInventory(AgentRecord& record, const protocol::RuntimeInventory& inventory);

class AgentTracker {
 public:
  using Guard = Ledger::Guard;
  using HeartbeatCallback = std::function<void(Outcome<protocol::HeartbeatReply>)>;

  AgentTracker(Ledger& ledger, SessionLifecycle& lifecycle, Metrics& metrics, LogSink log);
  ~AgentTracker();

  void start();  // the state writer
  // Saves what is queued, then stops the writer. Call after the ledger's `stopping` is set.
  void stop();

  // A digest-only heartbeat, or a full report that changes nothing stored, is answered
  // at once; a full report that changes a known agent's row is answered once that row
  // is stored, by one group commit with the other agents' reports that arrived
  // meanwhile. `done` runs exactly once, without the ledger's lock, maybe on the writer.
  void heartbeat(const std::string& agentId, const protocol::Heartbeat& heartbeat, HeartbeatCallback done);
  Outcome<protocol::EventAck> events(const std::string& agentId, const protocol::EventBatch& batch);
  // Agents silent past the timeout become LOST: sessions that had not started there
  // fail; running ones keep their state (marked) but stop counting against its capacity.
  void detectLost(const Guard& guard);
  // Stores the runtimes and images an agent answered a refresh with (as a full report
  // would) and returns its record; UnknownAgent when it is not registered.
  Outcome<AgentRecord> takeRefresh(const std::string& agentId, const protocol::RuntimeInventory& inventory);

 private:
  struct Applied {
    std::optional<Outcome<protocol::HeartbeatReply>> answer;  // nullopt: queued for the writer
    std::vector<std::string> notActive;  // sessions the agent runs that the ledger has not active
    std::string rpcUrl;
  };

  Applied apply(const Guard& guard, const std::string& agentId, const protocol::Heartbeat& heartbeat,
                HeartbeatCallback& done);
  Outcome<protocol::HeartbeatReply> applyFullReport(const Guard& guard, const std::string& agentId,
                                                    const protocol::Heartbeat& heartbeat, bool& saveLater,
                                                    std::vector<std::string>& notActive);
  std::set<std::string> refusedSlots(const SlotRegistry& registry, const LearnedSlots& learned, const std::string& agentId,
                                     const protocol::AgentState& state) const;
  // Sessions ended here that an agent still runs are stopped there; unknown ones logged.
  void stopEnded(const std::string& agentId, const std::string& rpcUrl, const std::vector<std::string>& ids);
  std::vector<std::string> reconcile(const Guard& guard, AgentView& agent, const protocol::AgentState& state, bool revived);
  void writerLoop();
  void log(LogLevel level, const std::string& message) const;

  Ledger& ledger_;
  SessionLifecycle& lifecycle_;
  Metrics& metrics_;
  LogSink log_;

  // Guarded by the ledger's lock.
  std::map<std::string, std::vector<HeartbeatCallback>> unsaved_;  // agent -> heartbeats answered once saved
  std::set<std::string> unknownLogged_;  // sessions never placed here, logged once each
  std::condition_variable writerWake_;   // waits with the ledger's lock
  std::thread writer_;
};

}  // namespace bai::manager
