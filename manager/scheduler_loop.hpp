// The scheduler thread: wakes when the ledger wants placement (or every period), then
// looks for lost agents (four times per heartbeat timeout), retries agent calls that got
// no answer, and runs one placement round, all under the ledger's lock.
//
// Threads: its own; everything it calls runs on it.
#pragma once

#include "agent_tracker.hpp"
#include "ledger.hpp"
#include "placement_round.hpp"
#include "session_lifecycle.hpp"

#include <chrono>
#include <thread>

namespace bai::manager {

class SchedulerLoop {
 public:
  SchedulerLoop(Ledger& ledger, AgentTracker& tracker, SessionLifecycle& lifecycle, PlacementRound& round);
  ~SchedulerLoop();

  void start();
  // Returns once the thread is gone; the ledger's `stopping` must be set and woken first.
  void join();

 private:
  void loop();

  Ledger& ledger_;
  AgentTracker& tracker_;
  SessionLifecycle& lifecycle_;
  PlacementRound& round_;
  std::chrono::steady_clock::time_point nextLostCheck_;
  std::chrono::steady_clock::time_point lastRound_;
  std::thread thread_;
};

}  // namespace bai::manager
