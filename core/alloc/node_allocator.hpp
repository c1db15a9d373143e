// Allocation across all device types of a node: one request, every map, all or nothing.
#pragma once

#include "alloc_map.hpp"

#include <memory>
#include <string>
#include <vector>

namespace bai::core {

struct SlotGrants {
  SlotName slot;
  Grants grants;
};
// In the order the slots were allocated.
using NodeAllocation = std::vector<SlotGrants>;

struct NodeAllocatorOptions {
  // Device names allocated first to last; unknown names follow in name order.
  std::vector<std::string> allocationOrder = {"cuda", "rocm", "cpu", "mem"};
  AffinityPolicy affinityPolicy = AffinityPolicy::Interleaved;
};

class NodeAllocator {
 public:
  explicit NodeAllocator(NodeAllocatorOptions options = {});

  // Refuses a second map for the same slot.
  Result<void> addMap(std::unique_ptr<AllocMap> map);
  // Slots matching globs of one set (e.g. {"cuda.device", "cuda.shares", "cuda.device:*-mig"})
  // cannot be requested together.
  void addExclusiveSet(std::vector<std::string> globs);
  // For a plugin that is unloaded: the caller makes sure no allocation still uses the map.
  bool removeMap(std::string_view slot);
  void removeExclusiveSet(const std::vector<std::string>& globs);

  AllocMap* map(std::string_view slot);
  const AllocMap* map(std::string_view slot) const;
  const std::vector<std::unique_ptr<AllocMap>>& maps() const { return maps_; }

  // Every non-zero slot of `request` or nothing: on any failure all maps are as before.
  Result<NodeAllocation, AllocationError> allocate(const ResourceSlot& request);
  Result<void, AllocationError> free(const NodeAllocation& allocation);
  Result<void, AllocationError> apply(const NodeAllocation& allocation);
  void clear();

  // Per slot, AllocMap::capacityInService: a disabled device counts only for what it holds.
  ResourceSlot capacity() const;
  ResourceSlot freeTotal() const;
  ResourceSlot largestAllocatable() const;

 private:
  // Position of a slot in allocation order: (rank of its device name, name).
  std::pair<std::size_t, std::string_view> orderKey(const SlotName& slot) const;
  Result<void, AllocationError> checkCombination(const ResourceSlot& request) const;
  Result<AllocMap*, AllocationError> mapFor(const SlotGrants& grants);

  NodeAllocatorOptions options_;
  std::vector<std::unique_ptr<AllocMap>> maps_;
  std::vector<std::vector<std::string>> exclusiveSets_;
};

}  // namespace bai::core
