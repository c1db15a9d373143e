#include "metrics.hpp"

#include <fmt/format.h>

namespace bai::manager {

void LatencyHistogram::observe(std::chrono::nanoseconds duration) {
  const double seconds = std::chrono::duration<double>(duration).count();
  std::size_t bucket = 0;
  while (bucket < kBounds.size() && seconds > kBounds[bucket]) ++bucket;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sumNanos_.fetch_add(static_cast<std::uint64_t>(duration.count()), std::memory_order_relaxed);
}

void LatencyHistogram::render(PrometheusText& out, std::string_view name, std::string_view help) const {
  out.family(name, MetricType::Histogram, help);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out.sampleWithSuffix("_bucket", {{"le", fmt::format("{}", kBounds[i])}}, std::to_string(cumulative));
  }
  cumulative += buckets_[kBounds.size()].load(std::memory_order_relaxed);
  out.sampleWithSuffix("_bucket", {{"le", "+Inf"}}, std::to_string(cumulative));
  out.sampleWithSuffix("_sum", {}, fmt::format("{:.9f}", static_cast<double>(sumNanos_.load(std::memory_order_relaxed)) / 1e9));
  out.sampleWithSuffix("_count", {}, std::to_string(count_.load(std::memory_order_relaxed)));
}

void Metrics::render(PrometheusText& out) const {
  auto counter = [&out](const char* name, const char* help, const std::atomic<std::uint64_t>& value) {
    out.family(name, MetricType::Counter, help);
    out.sample({}, value.load(std::memory_order_relaxed));
  };
  counter("bai_manager_heartbeats_total", "heartbeats received", heartbeats);
  counter("bai_manager_full_heartbeats_total", "heartbeats carrying the agent's full state", fullHeartbeats);
  counter("bai_manager_agent_row_batches_total", "group commits of agents' changed rows", agentRowBatches);
  counter("bai_manager_agent_rows_saved_total", "agents' rows saved by group commits", agentRowsSaved);
  counter("bai_manager_events_total", "session events applied", events);
  counter("bai_manager_duplicate_events_total", "session events received again and ignored", duplicateEvents);
  counter("bai_manager_placements_total", "sessions reserved on an agent", placements);
  counter("bai_manager_agent_refusals_total", "create-session calls an agent refused", agentRefusals);
  counter("bai_manager_agent_call_failures_total", "agent calls that got no answer", agentCallFailures);
  counter("bai_manager_agent_calls_dropped_total", "agent calls not sent: too many waiting for that agent, or waited too long",
          agentCallsDropped);
  counter("bai_manager_agents_lost_total", "agents marked LOST after silence", agentsLost);
  counter("bai_manager_slot_type_conflicts_total", "slots refused for reporting another type than known", slotTypeConflicts);
  counter("bai_manager_auth_failures_total", "API requests refused as unauthenticated", authFailures);
  counter("bai_manager_store_errors_total", "store transactions that failed", storeErrors);
  counter("bai_manager_policy_errors_total", "policy answers refused (submission order or the first candidate used)", policyErrors);
  placementLatency.render(out, "bai_manager_placement_seconds", "one placement decision including its commit");
}

}  // namespace bai::manager
