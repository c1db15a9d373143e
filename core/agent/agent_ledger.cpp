#include "agent/agent_ledger.hpp"

#include <algorithm>

namespace bai::core {

bool AgentState::isDraining(const AcceleratorPlugin* plugin) const {
  return std::find(draining.begin(), draining.end(), plugin) != draining.end();
}

bool AgentState::isWithdrawn(const AcceleratorPlugin* plugin) const {
  return std::find(withdrawn.begin(), withdrawn.end(), plugin->identity().name) != withdrawn.end();
}

std::vector<std::shared_ptr<AcceleratorPlugin>> AgentState::activePlugins() const {
  std::vector<std::shared_ptr<AcceleratorPlugin>> out;
  for (auto& plugin : inventory.host().plugins()) {
    // A withdrawn or draining plugin's devices cannot be in a new allocation.
    if (plugin->failed() || !inventory.offers(plugin.get()) || isDraining(plugin.get())) continue;
    out.push_back(std::move(plugin));
  }
  return out;
}

protocol::DeviceAllocation AgentState::partOf(const AcceleratorPlugin* plugin,
                                              const protocol::DeviceAllocation& allocation) const {
  protocol::DeviceAllocation part;
  for (const auto& [slot, perDevice] : allocation) {
    if (inventory.ownerOf(slot) == plugin) part[slot] = perDevice;
  }
  return part;
}

bool AgentState::anySessionHolds(const AcceleratorPlugin* plugin) const {
  for (const auto& [id, session] : sessions) {
    if (!session.released && !partOf(plugin, session.info.allocation).empty()) return true;
  }
  return false;
}

AgentLedger::AgentLedger(std::unique_ptr<NodeInventory> inventory)
    : inventory_(std::move(inventory)), state_{*inventory_, {}, {}, {}, {}} {}

}  // namespace bai::core
