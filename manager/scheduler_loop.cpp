#include "scheduler_loop.hpp"

namespace bai::manager {

SchedulerLoop::SchedulerLoop(Ledger& ledger, AgentTracker& tracker, SessionLifecycle& lifecycle, PlacementRound& round)
    : ledger_(ledger), tracker_(tracker), lifecycle_(lifecycle), round_(round) {}

SchedulerLoop::~SchedulerLoop() { join(); }

void SchedulerLoop::start() {
  thread_ = std::thread([this] { loop(); });
}

void SchedulerLoop::join() {
  if (thread_.joinable()) thread_.join();
}

void SchedulerLoop::loop() {
  Ledger::Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  while (!state.stopping) {
    // Lost agents are looked for four times per timeout: not at every wake-up, which
    // under heavy heartbeat load would scan every agent thousands of times a second.
    const auto lostCheckEvery = state.tunables.heartbeatTimeout / 4;
    ledger_.waitForPlacementWork(guard, std::min(state.tunables.schedulerPeriod, lostCheckEvery));
    if (state.stopping) break;
    // With a long queue, submissions arriving faster than one a millisecond share a round
    // instead of each sequencing the whole queue again; with a short one a round is cheap,
    // and a new session is placed at once.
    constexpr auto kRoundSpacing = std::chrono::milliseconds(1);
    constexpr std::size_t kLongQueue = 32;
    if (const auto since = std::chrono::steady_clock::now() - lastRound_;
        since < kRoundSpacing && round_.lastPending() >= kLongQueue) {
      guard.unlock();
      std::this_thread::sleep_for(kRoundSpacing - since);
      guard.lock();
      if (state.stopping) break;
    }
    lastRound_ = std::chrono::steady_clock::now();
    state.placementWanted = false;
    if (lastRound_ >= nextLostCheck_) {
      tracker_.detectLost(guard);
      nextLostCheck_ = lastRound_ + lostCheckEvery;
    }
    lifecycle_.retryStalled(guard);
    round_.run(guard);
  }
}

}  // namespace bai::manager
