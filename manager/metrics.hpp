// The manager's counters and its placement latency histogram, for /metrics. Lock-free
// increments; the gauges (agents, slots, sessions) are read from state when rendered.
#pragma once

#include "prometheus_text.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace bai::manager {

class LatencyHistogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   0.5,    1.0};
  void observe(std::chrono::nanoseconds duration);
  // The histogram family `name` (cumulative buckets, sum, count).
  void render(PrometheusText& out, std::string_view name, std::string_view help) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sumNanos_{0};
};

struct Metrics {
  std::atomic<std::uint64_t> heartbeats{0};
  std::atomic<std::uint64_t> fullHeartbeats{0};
  std::atomic<std::uint64_t> agentRowBatches{0};  // group commits of agents' rows
  std::atomic<std::uint64_t> agentRowsSaved{0};
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> duplicateEvents{0};
  std::atomic<std::uint64_t> placements{0};
  std::atomic<std::uint64_t> agentRefusals{0};
  std::atomic<std::uint64_t> agentCallFailures{0};
  std::atomic<std::uint64_t> agentCallsDropped{0};  // never sent: the agent's lane was full or too slow
  std::atomic<std::uint64_t> agentsLost{0};
  std::atomic<std::uint64_t> slotTypeConflicts{0};
  std::atomic<std::uint64_t> authFailures{0};
  std::atomic<std::uint64_t> storeErrors{0};
  std::atomic<std::uint64_t> policyErrors{0};
  LatencyHistogram placementLatency;  // one decision: pick, select and the reserving commit

  // The counters and the histogram, after the caller's gauges.
  void render(PrometheusText& out) const;
};

}  // namespace bai::manager
