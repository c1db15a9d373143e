// What this node offers: the loaded plugins, one allocation map per slot, the exclusive
// slot sets, and the system reservation taken out of the maps before any session.
#pragma once

#include "agent/agent_config.hpp"
#include "alloc/node_allocator.hpp"
#include "plugin/plugin_host.hpp"

#include <bai/protocol.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bai::core {

class NodeInventory {
 public:
  // Offers the plugins `host` has loaded: builds their maps and takes the reservation; a
  // reservation larger than the node is an error naming the slot and both amounts.
  static Result<std::unique_ptr<NodeInventory>> build(std::unique_ptr<PluginHost> host, const AgentSettings& settings);

  PluginHost& host() { return *host_; }
  const PluginHost& host() const { return *host_; }
  NodeAllocator& allocator() { return allocator_; }
  const NodeAllocator& allocator() const { return allocator_; }
  const std::map<std::string, SlotType>& slotTypes() const { return slotTypes_; }
  // The plugin that offers `slot`, or nullptr.
  AcceleratorPlugin* ownerOf(const std::string& slot) const;

  // Capacity offered to sessions: the maps' capacity in service (healthy devices, and
  // what disabled ones still hold) minus the reservation.
  ResourceSlot available() const;
  ResourceSlot occupied() const;  // held by sessions (without the reservation)
  const NodeAllocation& reservation() const { return reservation_; }

  // NodeAllocation -> slot -> device id -> amount, for records and plugins.
  protocol::DeviceAllocation describe(const NodeAllocation& allocation) const;
  // Takes back what a recorded session holds, after a restart: a device no longer
  // offered (masked, gone) is kept allocated, retired, until the session frees it. What
  // cannot be held (a slot no plugin offers any more) is left out and said in `notes`.
  // All or nothing: on failure nothing is taken.
  Result<NodeAllocation> restore(const protocol::DeviceAllocation& recorded, std::vector<std::string>& notes);

  // Enables or disables `deviceId` in every map of `owner`; true when something changed.
  bool setDeviceEnabled(const AcceleratorPlugin* owner, const std::string& deviceId, bool enabled);
  // Disables every device of `owner`'s maps: a withdrawn plugin's slots get no new sessions.
  void withdraw(const AcceleratorPlugin* owner);

  // Offers a plugin the host has loaded: its maps, slot types and exclusive sets, and the
  // system reservation on its slots. On failure nothing of it is offered.
  Result<void> addPlugin(AcceleratorPlugin* plugin);
  // Takes back everything addPlugin offered, its share of the reservation included. The
  // caller makes sure that no session holds its slots.
  void removePlugin(const AcceleratorPlugin* plugin);
  bool offers(const AcceleratorPlugin* plugin) const;

  // A table of plugins, devices and slots for the start-up log.
  std::string summary() const;

 private:
  NodeInventory() = default;

  std::unique_ptr<PluginHost> host_;
  NodeAllocator allocator_;
  std::map<std::string, SlotType> slotTypes_;
  std::map<std::string, AcceleratorPlugin*> owners_;
  std::vector<const AcceleratorPlugin*> offered_;  // plugins whose maps are in allocator_
  ResourceSlot reservationRequest_;                // resource.reserved-*, taken where the slot exists
  NodeAllocation reservation_;
  ResourceSlot reserved_;
};

}  // namespace bai::core
