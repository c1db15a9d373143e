#include "alloc_map.hpp"

#include "alloc_units.hpp"

#include <algorithm>
#include <functional>
#include <numeric>

namespace bai::core {

using alloc_units::divideExactly;
using alloc_units::kMaxTotalUnits;

const char* allocationErrorKindName(AllocationErrorKind kind) {
  switch (kind) {
    case AllocationErrorKind::InsufficientResource: return "InsufficientResource";
    case AllocationErrorKind::InvalidResourceCombination: return "InvalidResourceCombination";
    case AllocationErrorKind::InvalidResourceArgument: return "InvalidResourceArgument";
    case AllocationErrorKind::NotMultipleOfQuantum: return "NotMultipleOfQuantum";
    case AllocationErrorKind::FractionalResourceFragmented: return "FractionalResourceFragmented";
    case AllocationErrorKind::UnsupportedResource: return "UnsupportedResource";
  }
  return "Unknown";
}

const char* allocationStrategyName(AllocationStrategy strategy) {
  return strategy == AllocationStrategy::Fill ? "fill" : "evenly";
}

Result<AllocationStrategy> parseAllocationStrategy(std::string_view text) {
  if (text == "fill") return AllocationStrategy::Fill;
  if (text == "evenly") return AllocationStrategy::Evenly;
  return fail(ErrorCode::InvalidArgument,
              "unknown allocation strategy '" + std::string(text) + "' (expected fill or evenly)");
}

AllocMap::AllocMap(SlotName slot, SlotType slotType, AllocationStrategy strategy, __int128 unitRaw)
    : slot_(std::move(slot)), slotType_(slotType), strategy_(strategy), unitRaw_(unitRaw) {}

Result<void> AllocMap::addDevices(const std::vector<DeviceSpec>& devices) {
  std::vector<std::uint32_t> perNode;  // devices seen so far per NUMA node (+1 for "unknown")
  std::int64_t total = 0;
  for (const DeviceSpec& spec : devices) {
    const std::string where = "slot " + slot_.str() + ", device '" + spec.id + "'";
    if (spec.id.empty()) return fail(ErrorCode::InvalidArgument, "slot " + slot_.str() + ": a device has an empty id");
    if (index_.count(spec.id) != 0) return fail(ErrorCode::InvalidArgument, where + ": duplicate device id");
    if (spec.capacity.isNegative() || spec.capacity.isInfinite()) {
      return fail(ErrorCode::InvalidArgument, where + ": capacity must be finite and not negative");
    }
    if (spec.numaNode < -1) return fail(ErrorCode::InvalidArgument, where + ": NUMA node must be >= -1");
    const __int128 units = spec.capacity.raw() / unitRaw_;  // fraction maps use whole quanta only
    if (!isFraction() && units * unitRaw_ != spec.capacity.raw()) {
      return fail(ErrorCode::InvalidArgument, where + ": capacity " + spec.capacity.toString() + " is not a whole number");
    }
    if (units > kMaxTotalUnits - total) return fail(ErrorCode::OutOfRange, where + ": total capacity too large");
    total += static_cast<std::int64_t>(units);
    const auto nodeSlot = static_cast<std::size_t>(spec.numaNode + 1);
    if (perNode.size() <= nodeSlot) perNode.resize(nodeSlot + 1, 0);
    index_.emplace(spec.id, static_cast<std::uint32_t>(devices_.size()));
    devices_.push_back(Device{spec.id, static_cast<std::int64_t>(units), 0, spec.numaNode, perNode[nodeSlot]++, true});
  }
  return {};
}

std::optional<std::uint32_t> AllocMap::findDevice(std::string_view id) const {
  auto it = index_.find(std::string(id));
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

Quantity AllocMap::capacityTotal() const {
  std::int64_t total = 0;
  for (const Device& d : devices_) total += d.capacity;
  return toQuantity(total);
}

Quantity AllocMap::capacityInService() const {
  std::int64_t total = 0;
  for (const Device& d : devices_) total += d.enabled ? d.capacity : d.used;
  return toQuantity(total);
}

Quantity AllocMap::allocatedTotal() const {
  std::int64_t total = 0;
  for (const Device& d : devices_) total += d.used;
  return toQuantity(total);
}

Quantity AllocMap::freeTotal() const {
  std::int64_t total = 0;
  for (const Device& d : devices_) total += d.enabled ? d.free() : 0;
  return toQuantity(total);
}

Quantity AllocMap::largestAllocatable() const {
  if (slotType_ == SlotType::Unified) return Quantity();
  std::vector<std::int64_t> freeUnits;
  std::int64_t largestSingle = 0;
  for (const Device& d : devices_) {
    if (!d.enabled || d.free() <= 0) continue;
    freeUnits.push_back(d.free());
    largestSingle = std::max(largestSingle, d.free());
  }
  if (slotType_ == SlotType::Unique) return Quantity(toQuantity(largestSingle) >= Quantity(1) ? 1 : 0);
  return largestFor(freeUnits);
}

Quantity AllocMap::largestFor(std::vector<std::int64_t>& freeUnits) const {
  return toQuantity(std::accumulate(freeUnits.begin(), freeUnits.end(), std::int64_t{0}));
}

AllocationError AllocMap::error(AllocationErrorKind kind, Quantity requested, Quantity allocatable,
                                std::string why) const {
  AllocationError e;
  e.kind = kind;
  e.slot = slot_.str();
  e.requested = requested;
  e.allocatable = allocatable;
  e.message = std::string(allocationErrorKindName(kind)) + ": " + slot_.str() + ": " + why + " (requested " +
              requested.toString() + ", allocatable " + allocatable.toString() + ")";
  return e;
}

AllocationError AllocMap::insufficient(std::int64_t units, std::int64_t freeUnits) const {
  return error(AllocationErrorKind::InsufficientResource, toQuantity(units), toQuantity(freeUnits),
               "not enough free capacity");
}

Result<Grants, AllocationError> AllocMap::allocate(Quantity amount, const AffinityHint& hint) {
  auto invalid = [&](const std::string& why) {
    return Failure{error(AllocationErrorKind::InvalidResourceArgument, amount, largestAllocatable(), why)};
  };
  if (slotType_ == SlotType::Unified) return invalid("a unified slot is given to every session, not allocated");
  if (amount.isNegative()) return invalid("a negative amount");
  if (amount.isInfinite()) return invalid("an infinite amount");
  if (amount.isZero()) return Grants{};
  if (slotType_ == SlotType::Unique && amount != Quantity(1)) return invalid("a unique slot is requested as exactly 1");

  auto units = toUnits(amount);
  if (!units) return Failure{units.error()};
  auto placed = placeWithAffinity(*units, hint);
  if (!placed) return Failure{placed.error()};

  std::sort(placed->begin(), placed->end(), [](const Placement& a, const Placement& b) { return a.device < b.device; });
  Grants grants;
  grants.reserve(placed->size());
  for (const Placement& p : *placed) {
    devices_[p.device].used += p.units;
    grants.push_back(DeviceGrant{p.device, toQuantity(p.units)});
  }
  return grants;
}

bool AllocMap::preferred(const Candidate& a, const Candidate& b) { return byPreference(a, b); }

AllocMap::Candidates& AllocMap::candidates(const AffinityHint& hint, int onlyNode) const {
  // One buffer per thread: allocation runs often and a map is used by one thread at a time.
  thread_local Candidates out;
  out.clear();
  const bool hintGiven = !hint.empty();
  for (std::uint32_t i = 0; i < devices_.size(); ++i) {
    const Device& d = devices_[i];
    if (!d.enabled || d.free() <= 0) continue;
    const bool hinted = hintGiven && (d.numaNode < 0 || hint.contains(d.numaNode));
    if (onlyNode == kHintedNodes && !hinted) continue;
    if (onlyNode >= 0 && d.numaNode >= 0 && d.numaNode != onlyNode) continue;
    out.push_back(Candidate{d.free(), i, d.rankInNode, d.numaNode, hinted});
  }
  return out;
}

AllocMap::PlaceResult AllocMap::placeWithAffinity(std::int64_t units, const AffinityHint& hint) const {
  if (hint.policy() == AffinityPolicy::PreferSingleNode) {
    if (!hint.empty()) {
      if (auto placed = place(units, candidates(hint, kHintedNodes))) return placed;
    } else {
      // Try whole NUMA nodes, the one with most free capacity first.
      std::vector<std::pair<std::int64_t, int>> nodes;  // (free, node)
      for (const Device& d : devices_) {
        if (!d.enabled || d.numaNode < 0) continue;
        auto it = std::find_if(nodes.begin(), nodes.end(), [&](const auto& n) { return n.second == d.numaNode; });
        if (it == nodes.end()) nodes.emplace_back(d.free(), d.numaNode);
        else it->first += d.free();
      }
      std::sort(nodes.begin(), nodes.end(),
                [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
      if (nodes.size() > 1) {
        for (const auto& [nodeFree, node] : nodes) {
          if (nodeFree < units) break;
          if (auto placed = place(units, candidates(hint, node))) return placed;
        }
      }
    }
  }
  return place(units, candidates(hint, kAnyNode));
}

AllocMap::PlaceResult AllocMap::fill(std::int64_t units, Candidates& candidates) const {
  std::int64_t total = 0;
  for (const Candidate& c : candidates) total += c.free;
  if (total < units) return Failure{insufficient(units, total)};
  // Most-free first, sorting only as many devices as the request needs.
  std::size_t sorted = 0;
  for (std::size_t want = std::min<std::size_t>(8, candidates.size());; want = std::min(candidates.size(), want * 4)) {
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(want), candidates.end(), byPreference);
    sorted = want;
    std::int64_t covered = 0;
    for (std::size_t i = 0; i < want; ++i) covered += candidates[i].free;
    if (covered >= units || want == candidates.size()) break;
  }
  std::vector<Placement> out;
  std::int64_t remaining = units;
  for (std::size_t i = 0; i < sorted && remaining > 0; ++i) {
    const std::int64_t take = std::min(remaining, candidates[i].free);
    out.push_back({candidates[i].device, take});
    remaining -= take;
  }
  return out;
}

// Water filling: devices with less free than the even share give all they have; the
// rest get the same level, the remainder one unit each to the preferred devices.
AllocMap::PlaceResult AllocMap::spreadEvenly(std::int64_t units, Candidates& candidates) const {
  std::int64_t total = 0, minFree = INT64_MAX;
  for (const Candidate& c : candidates) {
    total += c.free;
    minFree = std::min(minFree, c.free);
  }
  if (total < units) return Failure{insufficient(units, total)};

  const std::size_t n = candidates.size();
  std::vector<Placement> out;
  if (minFree * static_cast<std::int64_t>(n) >= units) {
    // Common case: every device can take the even share, so only the order of the
    // `extra` preferred devices matters.
    const std::int64_t base = units / static_cast<std::int64_t>(n);
    const auto extra = static_cast<std::size_t>(units % static_cast<std::int64_t>(n));
    std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(extra), candidates.end(), byPreference);
    const std::size_t count = base > 0 ? n : extra;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) out.push_back({candidates[i].device, base + (i < extra ? 1 : 0)});
    return out;
  }

  std::sort(candidates.begin(), candidates.end(), byPreference);
  std::vector<std::uint32_t> byFree(n);  // positions into candidates, least free first
  std::iota(byFree.begin(), byFree.end(), 0u);
  std::stable_sort(byFree.begin(), byFree.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return candidates[a].free < candidates[b].free; });
  std::int64_t remaining = units;
  std::size_t taken = 0;
  std::vector<char> isTaken(n, 0);
  while (taken < n) {
    const Candidate& c = candidates[byFree[taken]];
    if (c.free * static_cast<std::int64_t>(n - taken) >= remaining) break;
    out.push_back({c.device, c.free});
    isTaken[byFree[taken]] = 1;
    remaining -= c.free;
    ++taken;
  }
  const auto level = static_cast<std::int64_t>(n - taken);
  const std::int64_t base = remaining / level;
  std::int64_t extra = remaining % level;
  for (std::size_t pos = 0; pos < n; ++pos) {  // in preference order
    if (isTaken[pos]) continue;
    const std::int64_t give = base + (extra > 0 ? 1 : 0);
    if (extra > 0) --extra;
    if (give > 0) out.push_back({candidates[pos].device, give});
  }
  return out;
}

AllocMap::PlaceResult AllocMap::toPlacements(const Grants& grants) const {
  std::vector<Placement> out;
  out.reserve(grants.size());
  for (const DeviceGrant& g : grants) {
    if (g.device >= devices_.size()) {
      return Failure{error(AllocationErrorKind::InvalidResourceArgument, g.amount, Quantity(),
                           "no device with index " + std::to_string(g.device))};
    }
    auto units = toUnits(g.amount);
    if (!units || g.amount.isNegative()) {
      return Failure{error(AllocationErrorKind::InvalidResourceArgument, g.amount, Quantity(),
                           "recorded amount " + g.amount.toString() + " for device '" + devices_[g.device].id +
                               "' is not a valid amount of this slot")};
    }
    if (!out.empty() && out.back().device >= g.device) {
      // Out of order or repeated: merge into the entry for that device (rare; records are sorted).
      auto same = std::find_if(out.begin(), out.end(), [&](const Placement& p) { return p.device == g.device; });
      if (same != out.end()) {
        same->units += *units;
        continue;
      }
    }
    out.push_back({g.device, *units});
  }
  return out;
}

AllocMap::PlaceResult AllocMap::placementsToFree(const Grants& grants) const {
  auto placements = toPlacements(grants);
  if (!placements) return placements;
  for (const Placement& p : *placements) {
    const Device& d = devices_[p.device];
    if (p.units > d.used) {
      return Failure{error(AllocationErrorKind::InvalidResourceArgument, toQuantity(p.units), toQuantity(d.used),
                           "freeing more than device '" + d.id + "' holds")};
    }
  }
  return placements;
}

AllocMap::PlaceResult AllocMap::placementsToApply(const Grants& grants) const {
  auto placements = toPlacements(grants);
  if (!placements) return placements;
  for (const Placement& p : *placements) {
    const Device& d = devices_[p.device];
    if (p.units > d.free()) {
      return Failure{error(AllocationErrorKind::InsufficientResource, toQuantity(p.units), toQuantity(d.free()),
                           "a restored allocation exceeds the free capacity of device '" + d.id + "'")};
    }
  }
  return placements;
}

Result<void, AllocationError> AllocMap::checkFree(const Grants& grants) const {
  if (auto placements = placementsToFree(grants); !placements) return Failure{placements.error()};
  return {};
}

Result<void, AllocationError> AllocMap::free(const Grants& grants) {
  auto placements = placementsToFree(grants);
  if (!placements) return Failure{placements.error()};
  for (const Placement& p : *placements) {
    Device& d = devices_[p.device];
    d.used -= p.units;
    if (d.retired) d.capacity -= p.units;
  }
  return {};
}

Result<DeviceGrant, AllocationError> AllocMap::holdOnRetired(const std::string& deviceId, Quantity amount) {
  auto units = toUnits(amount);
  if (!units || amount.isNegative()) {
    return Failure{error(AllocationErrorKind::InvalidResourceArgument, amount, Quantity(),
                         "recorded amount " + amount.toString() + " for device '" + deviceId +
                             "' is not a valid amount of this slot")};
  }
  auto known = findDevice(deviceId);
  if (known && !devices_[*known].retired) {
    return Failure{error(AllocationErrorKind::InvalidResourceArgument, amount, Quantity(),
                         "device '" + deviceId + "' is offered, not retired")};
  }
  if (!known) {
    known = static_cast<std::uint32_t>(devices_.size());
    index_.emplace(deviceId, *known);
    devices_.push_back(Device{deviceId, 0, 0, -1, 0, false, true});
  }
  Device& d = devices_[*known];
  d.capacity += *units;
  d.used += *units;
  return DeviceGrant{*known, amount};
}

Result<void, AllocationError> AllocMap::checkApply(const Grants& grants) const {
  if (auto placements = placementsToApply(grants); !placements) return Failure{placements.error()};
  return {};
}

Result<void, AllocationError> AllocMap::apply(const Grants& grants) {
  auto placements = placementsToApply(grants);
  if (!placements) return Failure{placements.error()};
  for (const Placement& p : *placements) devices_[p.device].used += p.units;
  return {};
}

void AllocMap::clear() {
  for (Device& d : devices_) d.used = 0;
}

// ---- DiscreteAllocMap -------------------------------------------------------------

DiscreteAllocMap::DiscreteAllocMap(SlotName slot, SlotType slotType, AllocationStrategy strategy)
    : AllocMap(std::move(slot), slotType, strategy, Quantity::kScale) {}

Result<std::unique_ptr<DiscreteAllocMap>> DiscreteAllocMap::create(SlotName slot, SlotType slotType,
                                                                   const std::vector<DeviceSpec>& devices,
                                                                   AllocMapOptions options) {
  std::unique_ptr<DiscreteAllocMap> map(new DiscreteAllocMap(std::move(slot), slotType, options.strategy));
  if (auto added = map->addDevices(devices); !added) return Failure{added.error()};
  return map;
}

Result<std::int64_t, AllocationError> DiscreteAllocMap::toUnits(Quantity amount) const {
  const std::optional<__int128> units = divideExactly(amount.raw(), Quantity::kScale);
  if (!units) {
    AllocationError e = error(AllocationErrorKind::InvalidResourceArgument, amount, largestAllocatable(),
                              "a discrete slot takes whole numbers");
    e.nearestValid = {Quantity::fromRaw(amount.wholeUnits() * Quantity::kScale),
                      Quantity::fromRaw((amount.wholeUnits() + 1) * Quantity::kScale)};
    return Failure{std::move(e)};
  }
  if (*units > kMaxTotalUnits) return Failure{insufficient(kMaxTotalUnits, 0)};
  return static_cast<std::int64_t>(*units);
}

AllocMap::PlaceResult DiscreteAllocMap::place(std::int64_t units, Candidates& candidates) const {
  return strategy() == AllocationStrategy::Fill ? fill(units, candidates) : spreadEvenly(units, candidates);
}

}  // namespace bai::core
