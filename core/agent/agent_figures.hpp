// What the agent's views show, as data. The agent's parts fill these in; agent_views.cpp,
// in the API layer, renders them as JSON or Prometheus text.
#pragma once

#include "alloc/alloc_map.hpp"
#include "plugin/plugin_host.hpp"
#include "report/reporter.hpp"

#include <bai/protocol.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bai::core {

struct DeviceFigures {
  std::string id;
  int numaNode = -1;
  Quantity capacity;
  Quantity allocated;
  bool enabled = true;
};

struct AllocationMapFigures {
  std::string slot;
  SlotType type = SlotType::Count;
  bool fraction = false;
  AllocationStrategy strategy = AllocationStrategy::Fill;
  Quantity free;
  Quantity largestAllocatable;
  std::vector<DeviceFigures> devices;
};

// The allocation maps and what each session holds on them, read at one instant.
struct AllocationFigures {
  std::vector<AllocationMapFigures> maps;
  // session id -> slot -> device -> amount, for the sessions that hold resources
  std::map<std::string, protocol::DeviceAllocation> holdings;
};

struct PluginHealthFigures {
  std::string name;
  std::string key;
  std::vector<protocol::DeviceHealthReport> devices;  // by device id
};

struct AgentHealth {
  std::string agentId;
  std::string limits;  // the limits back end, described
  bool limitsEnforced = false;
  std::vector<PluginHealthFigures> plugins;  // those offered
  std::vector<SkippedPlugin> skipped;
  std::vector<std::string> withdrawn;
  std::vector<std::string> draining;
  std::vector<protocol::RuntimeReport> runtimes;  // each runtime, and why one is unavailable
};

struct AgentMetrics {
  protocol::AgentState state;
  std::vector<protocol::SessionInfo> sessions;
  std::uint64_t sessionsStarted = 0;
  std::uint64_t sessionsFailed = 0;
  std::size_t pluginsSkipped = 0;
  std::size_t pluginsDraining = 0;
  bool limitsEnforced = false;
  std::size_t eventsUnacked = 0;
  std::optional<ReporterCounters> reporting;  // none before the reporter starts
  AllocationFigures allocation;
};

}  // namespace bai::core
