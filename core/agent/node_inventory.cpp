#include "agent/node_inventory.hpp"

#include <algorithm>
#include <iomanip>
#include <sstream>
#include <tuple>

namespace bai::core {

Result<std::unique_ptr<NodeInventory>> NodeInventory::build(std::unique_ptr<PluginHost> host,
                                                            const AgentSettings& settings) {
  std::unique_ptr<NodeInventory> inventory(new NodeInventory());
  inventory->host_ = std::move(host);
  inventory->allocator_ = NodeAllocator({settings.allocationOrder, settings.affinityPolicy});
  if (settings.reservedCpu > 0) inventory->reservationRequest_.set(SlotName::of("cpu"), Quantity(settings.reservedCpu));
  if (settings.reservedMem > 0) {
    inventory->reservationRequest_.set(SlotName::of("mem"), BinarySize(settings.reservedMem).toQuantity());
  }
  for (const auto& plugin : inventory->host_->plugins()) {
    if (auto added = inventory->addPlugin(plugin.get()); !added) return Failure{added.error()};
  }
  for (const auto& [slot, amount] : inventory->reservationRequest_) {
    if (!inventory->reserved_.contains(slot.str())) {
      return fail(ErrorCode::InvalidArgument, "resource.reserved-" + slot.str() + " (" + amount.toString() +
                                                  ") exceeds what this node has for '" + slot.str() +
                                                  "' (0): no plugin offers it");
    }
  }
  return inventory;
}

Result<void> NodeInventory::addPlugin(AcceleratorPlugin* plugin) {
  auto maps = plugin->buildMaps();
  if (!maps) return fail(ErrorCode::Internal, "plugin " + plugin->identity().name + ": " + maps.error().message);
  std::vector<std::string> slots;
  ResourceSlot reservation;
  for (auto& map : *maps) {
    const std::string slot = map->slot().str();
    if (auto added = allocator_.addMap(std::move(map)); !added) {
      for (const auto& done : slots) allocator_.removeMap(done);
      return Failure{added.error()};
    }
    slots.push_back(slot);
    if (reservationRequest_.contains(slot)) reservation.set(SlotName::of(slot), reservationRequest_.get(slot));
  }
  if (!reservation.empty()) {
    auto taken = allocator_.allocate(reservation);
    if (!taken) {
      for (const auto& done : slots) allocator_.removeMap(done);
      const auto& e = taken.error();
      return fail(ErrorCode::InvalidArgument, "resource.reserved-" + std::string(e.slot == "mem" ? "mem" : "cpu") + " (" +
                                                  e.requested.toString() + ") exceeds what this node has for '" + e.slot +
                                                  "' (" + e.allocatable.toString() + "): " + e.message);
    }
    for (auto& grants : *taken) reservation_.push_back(std::move(grants));
    reserved_ = reserved_ + reservation;
  }
  for (const auto& slot : slots) owners_[slot] = plugin;
  for (const auto& [slot, type] : plugin->discovery().slots) {
    slotTypes_[slot.str()] = type;
    owners_[slot.str()] = plugin;
  }
  for (const auto& globs : plugin->discovery().exclusive) allocator_.addExclusiveSet(globs);
  offered_.push_back(plugin);
  return {};
}

void NodeInventory::removePlugin(const AcceleratorPlugin* plugin) {
  auto offered = std::find(offered_.begin(), offered_.end(), plugin);
  if (offered == offered_.end()) return;
  offered_.erase(offered);
  std::vector<std::string> slots;
  for (const auto& [slot, owner] : owners_) {
    if (owner == plugin) slots.push_back(slot);
  }
  NodeAllocation kept;
  ResourceSlot keptReserved;
  for (auto& grants : reservation_) {
    if (std::find(slots.begin(), slots.end(), grants.slot.str()) == slots.end()) {
      keptReserved.set(grants.slot, reserved_.get(grants.slot));
      kept.push_back(std::move(grants));
    } else {
      (void)allocator_.free(NodeAllocation{grants});
    }
  }
  reservation_ = std::move(kept);
  reserved_ = keptReserved;
  for (const auto& slot : slots) {
    allocator_.removeMap(slot);
    slotTypes_.erase(slot);
    owners_.erase(slot);
  }
  for (const auto& globs : plugin->discovery().exclusive) allocator_.removeExclusiveSet(globs);
}

bool NodeInventory::offers(const AcceleratorPlugin* plugin) const {
  return std::find(offered_.begin(), offered_.end(), plugin) != offered_.end();
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

Result<NodeAllocation> NodeInventory::restore(const protocol::DeviceAllocation& recorded,
                                              std::vector<std::string>& notes) {
  NodeAllocation offered;  // on devices still offered: applied all or nothing
  std::vector<std::tuple<AllocMap*, std::string, Quantity>> retired;
  for (const auto& [slot, devices] : recorded) {
    AllocMap* map = allocator_.map(slot);
    if (map == nullptr) {
      notes.push_back("slot '" + slot + "' is no longer offered by any plugin; what it held there is not restored");
      continue;
    }
    SlotGrants grants{map->slot(), {}};
    for (const auto& [device, amount] : devices) {
      auto index = map->findDevice(device);
      if (index && !map->retired(*index)) {
        grants.grants.push_back({*index, amount});
        continue;
      }
      notes.push_back("slot '" + slot + "': device '" + device + "' is no longer offered; it stays allocated to the " +
                      "session until it ends");
      retired.emplace_back(map, device, amount);
    }
    std::sort(grants.grants.begin(), grants.grants.end(),
              [](const DeviceGrant& a, const DeviceGrant& b) { return a.device < b.device; });
    offered.push_back(std::move(grants));
  }
  if (auto applied = allocator_.apply(offered); !applied) return fail(ErrorCode::Conflict, applied.error().message);
  for (auto& [map, device, amount] : retired) {
    auto held = map->holdOnRetired(device, amount);
    if (!held) {
      notes.push_back(held.error().message);
      continue;
    }
    auto slot = std::find_if(offered.begin(), offered.end(), [&](const SlotGrants& g) { return g.slot == map->slot(); });
    slot->grants.push_back(*held);
    std::sort(slot->grants.begin(), slot->grants.end(),
              [](const DeviceGrant& a, const DeviceGrant& b) { return a.device < b.device; });
  }
  return offered;
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
    if (!offers(plugin.get())) continue;
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
