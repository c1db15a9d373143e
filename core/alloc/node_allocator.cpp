#include "node_allocator.hpp"

#include <fnmatch.h>

#include <algorithm>

namespace bai::core {
namespace {

AllocationError requestError(AllocationErrorKind kind, const std::string& slot, Quantity requested,
                             const std::string& why) {
  AllocationError e;
  e.kind = kind;
  e.slot = slot;
  e.requested = requested;
  e.message = std::string(allocationErrorKindName(kind)) + ": " + slot + ": " + why;
  return e;
}

bool matchesAny(const std::vector<std::string>& globs, const std::string& slot) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& glob) { return fnmatch(glob.c_str(), slot.c_str(), 0) == 0; });
}

}  // namespace

NodeAllocator::NodeAllocator(NodeAllocatorOptions options) : options_(std::move(options)) {}

Result<void> NodeAllocator::addMap(std::unique_ptr<AllocMap> map) {
  if (this->map(map->slot().str()) != nullptr) {
    return fail(ErrorCode::Conflict, "slot " + map->slot().str() + " already has an allocation map");
  }
  maps_.push_back(std::move(map));
  std::sort(maps_.begin(), maps_.end(), [&](const auto& a, const auto& b) {
    return orderKey(a->slot()) < orderKey(b->slot());
  });
  return {};
}

void NodeAllocator::addExclusiveSet(std::vector<std::string> globs) { exclusiveSets_.push_back(std::move(globs)); }

bool NodeAllocator::removeMap(std::string_view slot) {
  auto it = std::find_if(maps_.begin(), maps_.end(), [&](const auto& m) { return m->slot().str() == slot; });
  if (it == maps_.end()) return false;
  maps_.erase(it);
  return true;
}

void NodeAllocator::removeExclusiveSet(const std::vector<std::string>& globs) {
  if (auto it = std::find(exclusiveSets_.begin(), exclusiveSets_.end(), globs); it != exclusiveSets_.end()) {
    exclusiveSets_.erase(it);
  }
}

AllocMap* NodeAllocator::map(std::string_view slot) {
  return const_cast<AllocMap*>(static_cast<const NodeAllocator*>(this)->map(slot));
}

const AllocMap* NodeAllocator::map(std::string_view slot) const {
  for (const auto& m : maps_) {
    if (m->slot().str() == slot) return m.get();
  }
  return nullptr;
}

std::pair<std::size_t, std::string_view> NodeAllocator::orderKey(const SlotName& slot) const {
  const auto& order = options_.allocationOrder;
  const auto it = std::find(order.begin(), order.end(), slot.device());
  return {static_cast<std::size_t>(it - order.begin()), slot.str()};
}

Result<void, AllocationError> NodeAllocator::checkCombination(const ResourceSlot& request) const {
  for (const auto& globs : exclusiveSets_) {
    const std::string* first = nullptr;
    for (const auto& [slot, amount] : request) {
      if (amount.isZero() || !matchesAny(globs, slot.str())) continue;
      if (first != nullptr) {
        return Failure{requestError(AllocationErrorKind::InvalidResourceCombination, slot.str(), amount,
                                    "cannot be allocated together with " + *first)};
      }
      first = &slot.str();
    }
  }
  return {};
}

Result<NodeAllocation, AllocationError> NodeAllocator::allocate(const ResourceSlot& request) {
  for (const auto& [slot, amount] : request) {
    if (amount.isNegative()) {
      return Failure{requestError(AllocationErrorKind::InvalidResourceArgument, slot.str(), amount, "a negative amount")};
    }
    if (!amount.isZero() && map(slot.str()) == nullptr) {
      return Failure{requestError(AllocationErrorKind::UnsupportedResource, slot.str(), amount,
                                  "no device on this node provides this slot")};
    }
  }
  if (auto combination = checkCombination(request); !combination) return Failure{combination.error()};

  NodeAllocation done;
  AffinityHint hint{options_.affinityPolicy, {}};
  for (const auto& m : maps_) {  // maps_ is kept in allocation order
    const Quantity amount = request.get(m->slot());
    if (amount.isZero()) continue;
    auto grants = m->allocate(amount, hint);
    if (!grants) {
      for (const SlotGrants& earlier : done) (void)map(earlier.slot.str())->free(earlier.grants);
      return Failure{std::move(grants.error())};
    }
    for (const DeviceGrant& g : *grants) hint.addNode(m->numaNode(g.device));
    done.push_back(SlotGrants{m->slot(), std::move(*grants)});
  }
  return done;
}

Result<AllocMap*, AllocationError> NodeAllocator::mapFor(const SlotGrants& grants) {
  AllocMap* m = map(grants.slot.str());
  if (m == nullptr) {
    return Failure{requestError(AllocationErrorKind::UnsupportedResource, grants.slot.str(), Quantity(),
                                "no device on this node provides this slot")};
  }
  return m;
}

// Both check every map before touching any, so a bad record changes nothing.
Result<void, AllocationError> NodeAllocator::free(const NodeAllocation& allocation) {
  for (const SlotGrants& s : allocation) {
    auto m = mapFor(s);
    if (!m) return Failure{m.error()};
    if (auto ok = (*m)->checkFree(s.grants); !ok) return ok;
  }
  for (const SlotGrants& s : allocation) (void)map(s.slot.str())->free(s.grants);
  return {};
}

Result<void, AllocationError> NodeAllocator::apply(const NodeAllocation& allocation) {
  for (const SlotGrants& s : allocation) {
    auto m = mapFor(s);
    if (!m) return Failure{m.error()};
    if (auto ok = (*m)->checkApply(s.grants); !ok) return ok;
  }
  for (const SlotGrants& s : allocation) (void)map(s.slot.str())->apply(s.grants);
  return {};
}

void NodeAllocator::clear() {
  for (auto& m : maps_) m->clear();
}

ResourceSlot NodeAllocator::capacity() const {
  ResourceSlot out;
  for (const auto& m : maps_) out.set(m->slot(), m->capacityInService());
  return out;
}

ResourceSlot NodeAllocator::freeTotal() const {
  ResourceSlot out;
  for (const auto& m : maps_) out.set(m->slot(), m->freeTotal());
  return out;
}

ResourceSlot NodeAllocator::largestAllocatable() const {
  ResourceSlot out;
  for (const auto& m : maps_) out.set(m->slot(), m->largestAllocatable());
  return out;
}

}  // namespace bai::core
