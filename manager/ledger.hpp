// The one owner of the manager's cluster state: agents, active sessions, admin records
// and the bookkeeping placement and agent calls keep about them, behind one mutex, over
// the store. Every change of a session or a reservation goes through commit(): one
// store transaction first, then memory, so a crash never leaves memory ahead of disk.
//
// Threads: any. A part reads or changes the state only while it holds the Guard that
// lock() returns; no part calls an agent or waits on the network while holding it.
#pragma once

#include "clock.hpp"
#include "cluster.hpp"
#include "log_sink.hpp"
#include "metrics.hpp"
#include "slot_registry.hpp"
#include "store/store.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace bai::manager {

using bai::nowMillis;

// The settings SIGHUP changes while the manager runs; read under the ledger's lock by
// the threads that use them, so a change applies at their next look.
struct Tunables {
  std::chrono::milliseconds heartbeatTimeout{15000};
  std::chrono::milliseconds schedulerPeriod{1000};
  std::size_t candidateWindow = 32;
  std::chrono::milliseconds maxWait{600000};
  // Amounts of intrinsic slots for requests that name none ({"cpu", "1"}), as typed.
  std::vector<std::pair<std::string, std::string>> defaultSessionSlots = {{"cpu", "1"}, {"mem", "1g"}};
  int maxPendingPerKeypair = 100;  // for keypairs whose policy sets none; 0: no limit
};

struct ClusterState {
  Tunables tunables;
  SlotRegistry registry;
  std::map<std::string, AgentView> agents;
  std::map<std::string, SessionRecord> active;  // sessions not yet final
  std::map<std::string, KeypairRecord> keypairs;
  std::map<std::string, ScalingGroupRecord> scalingGroups;
  std::map<std::string, ResourcePolicyRecord> resourcePolicies;
  std::map<std::string, std::string> pendingReasons;                  // pending session -> why it waits
  std::map<std::string, std::map<std::string, std::string>> refusals;  // session -> agent -> why it refused
  std::set<std::string> inFlight;  // sessions with an agent call queued or running
  std::map<std::string, std::chrono::steady_clock::time_point> retryAt;  // agent calls to try again
  std::set<std::string> dirtyAgents;  // figures changed since placement indexed them
  bool placementWanted = true;         // something changed that may let a session be placed
  bool stopping = false;

  // The policy of keypair `accessKey`; nullptr: none, nothing limited.
  const ResourcePolicyRecord* policyOfOwner(const std::string& accessKey) const;
  // nullptr when the group has no record (the manager's defaults apply).
  const ScalingGroupRecord* scalingGroup(const std::string& name) const;
};

// A state change, written in one store transaction and then applied to memory.
struct Transition {
  std::vector<SessionRecord> sessions;  // written as they are; final ones leave `active`
  std::vector<std::string> reserve;     // sessions whose request is reserved on their agentId
  std::vector<std::string> release;     // reservations ended (allocation deleted)
  std::vector<std::string> suspend;     // reservations not counted while their agent is lost
  std::vector<std::string> resume;      // suspended reservations counted again
  std::function<Result<void>(StoreTransaction&)> extra;  // more writes in the same transaction
};

class Ledger {
 public:
  using Guard = std::unique_lock<std::mutex>;
  // Runs under the lock for every session that ends; must not take the lock again.
  using SessionEnded = std::function<void(const SessionRecord&)>;

  Ledger(std::unique_ptr<Store> store, Tunables tunables, Metrics& metrics, LogSink log);

  Guard lock() const { return Guard(mutex_); }
  ClusterState& state(const Guard& guard);
  const ClusterState& state(const Guard& guard) const;
  Result<void> commit(const Guard& guard, Transition transition);
  void onSessionEnded(SessionEnded observer) { sessionEnded_ = std::move(observer); }

  // Placement has work: a session, an agent, a reservation or a limit changed.
  void wantPlacement(const Guard& guard);
  // Waits up to `timeout` for wantPlacement() or stopping; the guard is released meanwhile.
  void waitForPlacementWork(Guard& guard, std::chrono::milliseconds timeout);
  // Wakes every waiter after `stopping` was set.
  void wakeAll() { placementWake_.notify_all(); }

  // Loads what a previous run left: records, agents with their used figures recounted
  // from the allocations, and the active sessions. Once, before any other thread runs.
  Result<void> load();

  Store& store() const { return *store_; }

 private:
  void applyToMemory(Transition& transition, const std::map<std::string, ResourceSlot>& newUsed);

  std::unique_ptr<Store> store_;
  Metrics& metrics_;
  LogSink log_;
  SessionEnded sessionEnded_;
  mutable std::mutex mutex_;
  std::condition_variable placementWake_;
  ClusterState state_;
};

}  // namespace bai::manager
