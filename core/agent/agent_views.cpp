#include "agent/agent_views.hpp"

#include "prometheus_text.hpp"

#include <nlohmann/json.hpp>

namespace bai::core {

std::string sessionsJson(const std::vector<protocol::SessionInfo>& sessions) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& info : sessions) list.push_back(nlohmann::json::parse(info.toJson()));
  return nlohmann::json{{"sessions", list}}.dump();
}

std::string allocationJson(const std::string& agentId, const AllocationFigures& allocation) {
  nlohmann::json maps = nlohmann::json::array();
  for (const AllocationMapFigures& map : allocation.maps) {
    nlohmann::json devices = nlohmann::json::array();
    for (const DeviceFigures& device : map.devices) {
      nlohmann::json holders = nlohmann::json::object();
      for (const auto& [id, held] : allocation.holdings) {
        auto slot = held.find(map.slot);
        if (slot == held.end()) continue;
        if (auto amount = slot->second.find(device.id); amount != slot->second.end()) {
          holders[id] = amount->second.toString();
        }
      }
      devices.push_back({{"id", device.id},
                         {"numa_node", device.numaNode},
                         {"capacity", device.capacity.toString()},
                         {"allocated", device.allocated.toString()},
                         {"enabled", device.enabled},
                         {"sessions", holders}});
    }
    maps.push_back({{"slot", map.slot},
                    {"type", slotTypeName(map.type)},
                    {"kind", map.fraction ? "fraction" : "discrete"},
                    {"strategy", allocationStrategyName(map.strategy)},
                    {"free", map.free.toString()},
                    {"largest_allocatable", map.largestAllocatable.toString()},
                    {"devices", devices}});
  }
  return nlohmann::json{{"agent_id", agentId}, {"maps", maps}}.dump();
}

std::string healthJson(const AgentHealth& health) {
  nlohmann::json plugins = nlohmann::json::array();
  for (const PluginHealthFigures& plugin : health.plugins) {
    nlohmann::json devices = nlohmann::json::array();
    for (const auto& d : plugin.devices) devices.push_back({{"id", d.deviceId}, {"health", d.health}, {"reason", d.reason}});
    plugins.push_back({{"name", plugin.name}, {"key", plugin.key}, {"devices", devices}});
  }
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& s : health.skipped) skipped.push_back({{"file", s.file.string()}, {"reason", s.reason}});
  nlohmann::json runtimes = nlohmann::json::array();
  for (const auto& r : health.runtimes) {
    runtimes.push_back({{"kind", r.kind}, {"available", r.available}});
    if (!r.reason.empty()) runtimes.back()["reason"] = r.reason;
  }
  return nlohmann::json{{"agent_id", health.agentId},       {"limits", health.limits},
                        {"limits_enforced", health.limitsEnforced}, {"plugins", plugins},
                        {"skipped_plugins", skipped},       {"withdrawn_plugins", health.withdrawn},
                        {"draining_plugins", health.draining}, {"runtimes", runtimes}}
      .dump();
}

namespace {

void writeReporting(PrometheusText& out, const ReporterCounters& c) {
  out.family("bai_agent_heartbeats_total", MetricType::Counter, "Heartbeats by outcome.");
  out.sample({{"outcome", "sent"}}, c.heartbeatsSent);
  out.sample({{"outcome", "failed"}}, c.heartbeatsFailed);
  out.family("bai_agent_events_total", MetricType::Counter, "Session events delivered to the manager, by outcome.");
  out.sample({{"outcome", "acknowledged"}}, c.eventsSent);
  out.sample({{"outcome", "failed"}}, c.eventsFailed);
  out.family("bai_agent_manager_connected", MetricType::Gauge, "Whether the last contact with the manager succeeded.");
  out.sample({}, c.connected ? 1 : 0);
}

void writeAllocation(PrometheusText& out, const AllocationFigures& allocation) {
  out.family("bai_agent_device_allocated", MetricType::Gauge, "Amount of a slot held on each device.");
  for (const AllocationMapFigures& map : allocation.maps) {
    for (const DeviceFigures& device : map.devices) out.sample({{"slot", map.slot}, {"device", device.id}}, device.allocated);
  }
  out.family("bai_agent_session_allocation", MetricType::Gauge, "Amount of a slot each running session holds.");
  for (const auto& [id, held] : allocation.holdings) {
    for (const auto& [slot, devices] : held) {
      Quantity total;
      for (const auto& [device, amount] : devices) total += amount;
      out.sample({{"session", id}, {"slot", slot}}, total);
    }
  }
}

// A gauge or counter of one unlabelled sample.
template <class T>
void single(PrometheusText& out, std::string_view name, MetricType type, std::string_view help, T value) {
  out.family(name, type, help);
  out.sample({}, value);
}

}  // namespace

std::string metricsText(const AgentMetrics& m) {
  PrometheusText out;
  out.family("bai_agent_slot_capacity", MetricType::Gauge, "Capacity offered to sessions per slot.");
  for (const auto& [slot, amount] : m.state.available) out.sample({{"slot", slot.str()}}, amount);
  out.family("bai_agent_slot_used", MetricType::Gauge, "Amount held by sessions per slot.");
  for (const auto& [slot, amount] : m.state.occupied) out.sample({{"slot", slot.str()}}, amount);
  std::map<std::string, int> byState;
  for (const auto& info : m.sessions) ++byState[protocol::sessionStateName(info.state)];
  out.family("bai_agent_sessions", MetricType::Gauge, "Sessions by state.");
  for (const auto& [name, count] : byState) out.sample({{"state", name}}, count);
  single(out, "bai_agent_sessions_started_total", MetricType::Counter, "Sessions started.", m.sessionsStarted);
  single(out, "bai_agent_sessions_failed_total", MetricType::Counter, "Sessions that failed to start.", m.sessionsFailed);
  single(out, "bai_agent_plugins_skipped", MetricType::Gauge, "Plugins skipped at start.", m.pluginsSkipped);
  single(out, "bai_agent_limits_enforced", MetricType::Gauge, "Whether session limits are enforced (1) or advisory (0).",
         m.limitsEnforced ? 1 : 0);
  single(out, "bai_agent_events_unacked", MetricType::Gauge, "Session events not yet acknowledged by the manager.",
         m.eventsUnacked);
  if (m.reporting) writeReporting(out, *m.reporting);
  single(out, "bai_agent_plugins_draining", MetricType::Gauge, "Plugins no longer allowed that still serve sessions.",
         m.pluginsDraining);
  writeAllocation(out, m.allocation);
  return out.text();
}

}  // namespace bai::core
