#include "agent/agent_views.hpp"

#include <nlohmann/json.hpp>

#include <sstream>

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
  return nlohmann::json{{"agent_id", health.agentId},       {"limits", health.limits},
                        {"limits_enforced", health.limitsEnforced}, {"plugins", plugins},
                        {"skipped_plugins", skipped},       {"withdrawn_plugins", health.withdrawn},
                        {"draining_plugins", health.draining}}
      .dump();
}

namespace {

void writeReporting(std::ostringstream& out, const ReporterCounters& c) {
  out << "# HELP bai_agent_heartbeats_total Heartbeats by outcome.\n# TYPE bai_agent_heartbeats_total counter\n"
      << "bai_agent_heartbeats_total{outcome=\"sent\"} " << c.heartbeatsSent << "\n"
      << "bai_agent_heartbeats_total{outcome=\"failed\"} " << c.heartbeatsFailed << "\n"
      << "# HELP bai_agent_events_total Session events delivered to the manager, by outcome.\n"
      << "# TYPE bai_agent_events_total counter\n"
      << "bai_agent_events_total{outcome=\"acknowledged\"} " << c.eventsSent << "\n"
      << "bai_agent_events_total{outcome=\"failed\"} " << c.eventsFailed << "\n"
      << "# HELP bai_agent_manager_connected Whether the last contact with the manager succeeded.\n"
      << "# TYPE bai_agent_manager_connected gauge\nbai_agent_manager_connected " << (c.connected ? 1 : 0) << "\n";
}

void writeAllocation(std::ostringstream& out, const AllocationFigures& allocation) {
  out << "# HELP bai_agent_device_allocated Amount of a slot held on each device.\n"
      << "# TYPE bai_agent_device_allocated gauge\n";
  for (const AllocationMapFigures& map : allocation.maps) {
    for (const DeviceFigures& device : map.devices) {
      out << "bai_agent_device_allocated{slot=\"" << map.slot << "\",device=\"" << device.id << "\"} "
          << device.allocated.toString() << "\n";
    }
  }
  out << "# HELP bai_agent_session_allocation Amount of a slot each running session holds.\n"
      << "# TYPE bai_agent_session_allocation gauge\n";
  for (const auto& [id, held] : allocation.holdings) {
    for (const auto& [slot, devices] : held) {
      Quantity total;
      for (const auto& [device, amount] : devices) total += amount;
      out << "bai_agent_session_allocation{session=\"" << id << "\",slot=\"" << slot << "\"} " << total.toString() << "\n";
    }
  }
}

}  // namespace

std::string metricsText(const AgentMetrics& m) {
  std::ostringstream out;
  out << "# HELP bai_agent_slot_capacity Capacity offered to sessions per slot.\n# TYPE bai_agent_slot_capacity gauge\n";
  for (const auto& [slot, amount] : m.state.available) out << "bai_agent_slot_capacity{slot=\"" << slot.str() << "\"} " << amount.toString() << "\n";
  out << "# HELP bai_agent_slot_used Amount held by sessions per slot.\n# TYPE bai_agent_slot_used gauge\n";
  for (const auto& [slot, amount] : m.state.occupied) out << "bai_agent_slot_used{slot=\"" << slot.str() << "\"} " << amount.toString() << "\n";
  std::map<std::string, int> byState;
  for (const auto& info : m.sessions) ++byState[protocol::sessionStateName(info.state)];
  out << "# HELP bai_agent_sessions Sessions by state.\n# TYPE bai_agent_sessions gauge\n";
  for (const auto& [name, count] : byState) out << "bai_agent_sessions{state=\"" << name << "\"} " << count << "\n";
  out << "# HELP bai_agent_sessions_started_total Sessions started.\n# TYPE bai_agent_sessions_started_total counter\n"
      << "bai_agent_sessions_started_total " << m.sessionsStarted << "\n";
  out << "# HELP bai_agent_sessions_failed_total Sessions that failed to start.\n# TYPE bai_agent_sessions_failed_total counter\n"
      << "bai_agent_sessions_failed_total " << m.sessionsFailed << "\n";
  out << "# HELP bai_agent_plugins_skipped Plugins skipped at start.\n# TYPE bai_agent_plugins_skipped gauge\n"
      << "bai_agent_plugins_skipped " << m.pluginsSkipped << "\n";
  out << "# HELP bai_agent_limits_enforced Whether session limits are enforced (1) or advisory (0).\n"
      << "# TYPE bai_agent_limits_enforced gauge\nbai_agent_limits_enforced " << (m.limitsEnforced ? 1 : 0) << "\n";
  out << "# HELP bai_agent_events_unacked Session events not yet acknowledged by the manager.\n"
      << "# TYPE bai_agent_events_unacked gauge\nbai_agent_events_unacked " << m.eventsUnacked << "\n";
  if (m.reporting) writeReporting(out, *m.reporting);
  out << "# HELP bai_agent_plugins_draining Plugins no longer allowed that still serve sessions.\n"
      << "# TYPE bai_agent_plugins_draining gauge\nbai_agent_plugins_draining " << m.pluginsDraining << "\n";
  writeAllocation(out, m.allocation);
  return out.str();
}

}  // namespace bai::core
