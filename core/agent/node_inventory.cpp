#include "agent/node_inventory.hpp"

#include <iomanip>
#include <sstream>

namespace bai::core {

Result<std::unique_ptr<NodeInventory>> NodeInventory::build(const AgentSettings& settings, LogSink log) {
  std::unique_ptr<NodeInventory> inventory(new NodeInventory());
  PluginHostOptions options;
  options.searchPath = settings.pluginPath;
  options.allow = settings.allowPlugins;
  options.block = settings.blockPlugins;
  options.callDeadline = settings.pluginCallTimeout;
  options.log = log;
  const auto configs = settings.pluginConfigs;
  options.configFor = [configs](const std::string& name, const std::string& key) {
    if (auto it = configs.find(key); it != configs.end()) return it->second;
    if (auto it = configs.find(name); it != configs.end()) return it->second;
    return std::string("{}");
  };
  inventory->host_ = std::make_unique<PluginHost>(std::move(options));
  inventory->host_->loadAll();
  inventory->allocator_ = NodeAllocator({settings.allocationOrder, settings.affinityPolicy});

  for (const auto& plugin : inventory->host_->plugins()) {
    auto maps = plugin->buildMaps();
    if (!maps) return fail(ErrorCode::Internal, "plugin " + plugin->identity().name + ": " + maps.error().message);
    for (auto& map : *maps) {
      inventory->owners_[map->slot().str()] = plugin.get();
      if (auto added = inventory->allocator_.addMap(std::move(map)); !added) return Failure{added.error()};
    }
    for (const auto& [slot, type] : plugin->discovery().slots) {
      inventory->slotTypes_[slot.str()] = type;
      inventory->owners_[slot.str()] = plugin.get();
    }
    for (const auto& globs : plugin->discovery().exclusive) inventory->allocator_.addExclusiveSet(globs);
  }

  ResourceSlot reservation;
  if (settings.reservedCpu > 0) reservation.set(SlotName::of("cpu"), Quantity(settings.reservedCpu));
  if (settings.reservedMem > 0) reservation.set(SlotName::of("mem"), BinarySize(settings.reservedMem).toQuantity());
  if (!reservation.empty()) {
    auto taken = inventory->allocator_.allocate(reservation);
    if (!taken) {
      const auto& e = taken.error();
      return fail(ErrorCode::InvalidArgument, "resource.reserved-" + std::string(e.slot == "mem" ? "mem" : "cpu") + " (" +
                                                  e.requested.toString() + ") exceeds what this node has for '" + e.slot +
                                                  "' (" + e.allocatable.toString() + "): " + e.message);
    }
    inventory->reservation_ = std::move(*taken);
    inventory->reserved_ = reservation;
  }
  return inventory;
}

AcceleratorPlugin* NodeInventory::ownerOf(const std::string& slot) const {
  auto it = owners_.find(slot);
  return it == owners_.end() ? nullptr : it->second;
}

ResourceSlot NodeInventory::available() const { return allocator_.capacity() - reserved_; }

ResourceSlot NodeInventory::occupied() const {
  ResourceSlot held;
  for (const auto& map : allocator_.maps()) held.set(map->slot(), map->allocatedTotal());
  return held - reserved_;
}

protocol::DeviceAllocation NodeInventory::describe(const NodeAllocation& allocation) const {
  protocol::DeviceAllocation out;
  for (const SlotGrants& slot : allocation) {
    const AllocMap* map = allocator_.map(slot.slot.str());
    for (const DeviceGrant& g : slot.grants) out[slot.slot.str()][map->deviceId(g.device)] = g.amount;
  }
  return out;
}

Result<NodeAllocation> NodeInventory::resolve(const protocol::DeviceAllocation& allocation) const {
  NodeAllocation out;
  for (const auto& [slot, devices] : allocation) {
    const AllocMap* map = allocator_.map(slot);
    if (map == nullptr) return fail(ErrorCode::NotFound, "slot '" + slot + "' is no longer offered by any plugin");
    SlotGrants grants{map->slot(), {}};
    for (const auto& [device, amount] : devices) {
      auto index = map->findDevice(device);
      if (!index) return fail(ErrorCode::NotFound, "slot '" + slot + "': device '" + device + "' is gone");
      grants.grants.push_back({*index, amount});
    }
    std::sort(grants.grants.begin(), grants.grants.end(),
              [](const DeviceGrant& a, const DeviceGrant& b) { return a.device < b.device; });
    out.push_back(std::move(grants));
  }
  return out;
}

bool NodeInventory::setDeviceEnabled(const AcceleratorPlugin* owner, const std::string& deviceId, bool enabled) {
  bool changed = false;
  for (const auto& map : allocator_.maps()) {
    if (ownerOf(map->slot().str()) != owner) continue;
    if (auto device = map->findDevice(deviceId); device && map->enabled(*device) != enabled) {
      map->setEnabled(*device, enabled);
      changed = true;
    }
  }
  return changed;
}

void NodeInventory::withdraw(const AcceleratorPlugin* owner) {
  for (const auto& map : allocator_.maps()) {
    if (ownerOf(map->slot().str()) != owner) continue;
    for (std::uint32_t i = 0; i < map->deviceCount(); ++i) map->setEnabled(i, false);
  }
}

std::string NodeInventory::summary() const {
  std::ostringstream out;
  out << "plugins:";
  for (const auto& plugin : host_->plugins()) {
    out << " " << plugin->identity().name << " " << plugin->identity().version << " (key "
        << plugin->identity().key << ", " << plugin->discovery().devices.size() << " devices)";
  }
  if (host_->plugins().empty()) out << " none";
  out << "\n  " << std::left << std::setw(28) << "slot" << std::setw(9) << "type" << std::setw(8) << "devices"
      << std::setw(22) << "capacity" << "reserved";
  for (const auto& map : allocator_.maps()) {
    const std::string slot = map->slot().str();
    const bool bytes = map->slotType() == SlotType::Bytes;
    auto show = [&](Quantity q) {
      return bytes && !q.isNegative() ? BinarySize::fromQuantity(q).value().toString() : q.toString();
    };
    out << "\n  " << std::setw(28) << slot << std::setw(9) << slotTypeName(map->slotType()) << std::setw(8)
        << map->deviceCount() << std::setw(22) << show(map->capacityTotal()) << show(reserved_.get(slot));
  }
  return out.str();
}

}  // namespace bai::core
