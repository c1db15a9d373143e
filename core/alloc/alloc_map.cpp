#include "alloc_map.hpp"

#include <algorithm>
#include <functional>
#include <numeric>

namespace bai::core {
namespace {

// Keeps every sum of units (and unit * device-count products of the water fill) in int64.
constexpr std::int64_t kMaxTotalUnits = std::int64_t{1} << 52;

// raw / unit when it divides exactly; 64-bit arithmetic in the common case, since
// 128-bit division is a library call.
std::optional<__int128> divideExactly(__int128 raw, __int128 unit) {
  if (raw >= INT64_MIN && raw <= INT64_MAX && unit <= INT64_MAX) {
    const auto r = static_cast<std::int64_t>(raw), u = static_cast<std::int64_t>(unit);
    if (r % u != 0) return std::nullopt;
    return r / u;
  }
  if (raw % unit != 0) return std::nullopt;
  return raw / unit;
}

}  // namespace

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

// ---- FractionAllocMap -------------------------------------------------------------

FractionAllocMap::FractionAllocMap(SlotName slot, SlotType slotType, const AllocMapOptions& options)
    : AllocMap(std::move(slot), slotType, options.strategy, options.quantum.raw()),
      fragmentationGuard_(options.fragmentationGuard) {}

Result<std::unique_ptr<FractionAllocMap>> FractionAllocMap::create(SlotName slot, SlotType slotType,
                                                                   const std::vector<DeviceSpec>& devices,
                                                                   AllocMapOptions options) {
  if (options.quantum <= Quantity() || options.quantum.isInfinite()) {
    return fail(ErrorCode::InvalidArgument,
                "slot " + slot.str() + ": quantum must be positive and finite, not " + options.quantum.toString());
  }
  if (options.minFree.isNegative() || options.minFree.isInfinite()) {
    return fail(ErrorCode::InvalidArgument,
                "slot " + slot.str() + ": min_free must be finite and not negative, not " + options.minFree.toString());
  }
  std::unique_ptr<FractionAllocMap> map(new FractionAllocMap(std::move(slot), slotType, options));
  if (auto added = map->addDevices(devices); !added) return Failure{added.error()};
  const __int128 quantum = options.quantum.raw();
  const __int128 minFree = (options.minFree.raw() + quantum - 1) / quantum;
  map->minFreeUnits_ = static_cast<std::int64_t>(std::min<__int128>(minFree, kMaxTotalUnits));
  return map;
}

Result<std::int64_t, AllocationError> FractionAllocMap::toUnits(Quantity amount) const {
  const __int128 q = quantum().raw();
  const std::optional<__int128> units = divideExactly(amount.raw(), q);
  if (!units) {
    const __int128 below = amount.raw() / q;
    AllocationError e = error(AllocationErrorKind::NotMultipleOfQuantum, amount, largestAllocatable(),
                              "not a multiple of the quantum " + quantum().toString());
    if (below > 0) e.nearestValid.push_back(Quantity::fromRaw(below * q));
    e.nearestValid.push_back(Quantity::fromRaw((below + 1) * q));
    e.message += "; nearest valid amounts: ";
    for (std::size_t i = 0; i < e.nearestValid.size(); ++i) {
      e.message += (i ? ", " : "") + e.nearestValid[i].toString();
    }
    return Failure{std::move(e)};
  }
  if (*units > kMaxTotalUnits) return Failure{insufficient(kMaxTotalUnits, 0)};
  return static_cast<std::int64_t>(*units);
}

std::int64_t FractionAllocMap::largestCapacity() const {
  std::int64_t largest = 0;
  for (const Device& d : devices_) largest = d.retired ? largest : std::max(largest, d.capacity);
  return largest;
}

bool FractionAllocMap::takesPart(std::int64_t freeUnits) const {
  return strategy() != AllocationStrategy::Evenly || freeUnits >= minFreeUnits_;
}

namespace {

// Whether `units` splits into near-equal shares over `n` devices whose free units are
// `mostFreeFirst`: n shares of units / n, units % n of them one unit more.
bool splitsNearEqually(const std::vector<std::int64_t>& mostFreeFirst, std::int64_t units, std::size_t n) {
  const std::int64_t share = units / static_cast<std::int64_t>(n);
  const auto larger = static_cast<std::size_t>(units % static_cast<std::int64_t>(n));
  return share > 0 && mostFreeFirst[n - 1] >= share && (larger == 0 || mostFreeFirst[larger - 1] > share);
}

}  // namespace

Quantity FractionAllocMap::largestFor(std::vector<std::int64_t>& freeUnits) const {
  std::erase_if(freeUnits, [&](std::int64_t f) { return !takesPart(f); });
  const std::int64_t total = std::accumulate(freeUnits.begin(), freeUnits.end(), std::int64_t{0});
  if (!fragmentationGuard_ || freeUnits.empty()) return toQuantity(total);
  // Under the guard an amount up to one device's capacity must fit on one device: all
  // of them do only while a largest device is wholly free. A larger amount splits into
  // near-equal shares over n devices; every amount up to n * f[n-1] + (devices among
  // the first n freer than f[n-1]) does, so the best n gives the largest.
  std::sort(freeUnits.begin(), freeUnits.end(), std::greater<>());
  if (freeUnits.front() < largestCapacity()) return toQuantity(freeUnits.front());
  std::int64_t largest = freeUnits.front();
  std::size_t freer = 0;  // devices among the first n with more free than the n-th
  for (std::size_t n = 2; n <= freeUnits.size(); ++n) {
    if (freeUnits[n - 1] < freeUnits[n - 2]) freer = n - 1;
    largest = std::max(largest, freeUnits[n - 1] * static_cast<std::int64_t>(n) + static_cast<std::int64_t>(freer));
  }
  return toQuantity(largest);
}

AllocMap::PlaceResult FractionAllocMap::place(std::int64_t units, Candidates& candidates) const {
  std::erase_if(candidates, [&](const Candidate& c) { return !takesPart(c.free); });
  std::int64_t total = 0, hintedTotal = 0;
  const Candidate* bestFit = nullptr;  // the tightest single device, hinted ones first
  for (const Candidate& c : candidates) {
    total += c.free;
    hintedTotal += c.hinted ? c.free : 0;
    if (c.free < units) continue;
    if (bestFit == nullptr || (c.hinted != bestFit->hinted ? c.hinted
                               : c.free != bestFit->free   ? c.free < bestFit->free
                                                           : preferred(c, *bestFit))) {
      bestFit = &c;
    }
  }
  if (total < units) return Failure{insufficient(units, total)};
  if (fragmentationGuard_ && units > largestCapacity()) return placeNearEqualShares(units, candidates);
  if (fragmentationGuard_) {  // it fits one device's capacity: it must fit one device
    if (bestFit == nullptr) {
      std::int64_t largestSingle = 0;
      for (const Candidate& c : candidates) largestSingle = std::max(largestSingle, c.free);
      return Failure{error(AllocationErrorKind::FractionalResourceFragmented, toQuantity(units),
                           toQuantity(largestSingle),
                           "free capacity is split across devices and no single device can hold the request")};
    }
    if (strategy() == AllocationStrategy::Fill) {  // the most preferred device that holds it all
      const Candidate* first = nullptr;
      for (const Candidate& c : candidates) {
        if (c.free >= units && (first == nullptr || preferred(c, *first))) first = &c;
      }
      return std::vector<Placement>{{first->device, units}};
    }
  }
  if (strategy() == AllocationStrategy::Fill) return fill(units, candidates);
  if (bestFit != nullptr) return std::vector<Placement>{{bestFit->device, units}};
  // A split stays on the hinted NUMA nodes when they can hold the whole request.
  if (hintedTotal >= units && hintedTotal < total) {
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(), [](const Candidate& c) { return !c.hinted; }),
                     candidates.end());
  }
  return placeMostEvenRun(units, candidates);
}

// No single device holds the request: choose a run of devices, adjacent in the
// most-free-first order, whose water-filled split is the most even (a difference of
// one quantum counts as even); ties go to fewer devices, then to the run of smaller
// devices so that big free devices stay whole. Prefix sums make each run O(log n).
AllocMap::PlaceResult FractionAllocMap::placeMostEvenRun(std::int64_t units, Candidates& candidates) const {
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.free != b.free ? a.free > b.free : preferred(a, b);
  });
  const Candidates& order = candidates;
  const std::size_t n = order.size();
  std::vector<std::int64_t> f(n), prefix(n + 1, 0);
  for (std::size_t j = 0; j < n; ++j) {
    f[j] = order[j].free;
    prefix[j + 1] = prefix[j] + f[j];
  }

  struct Split {
    std::size_t level;  // devices [0, level) of the run share the level; the rest give all
    std::int64_t base, extra, unevenness;
  };
  // Water fill of run [i, i + k), which must cover `units`.
  auto split = [&](std::size_t i, std::size_t k) {
    // A device at run position p gives all it has iff filling everyone to its level
    // still falls short: f[p] * (p + 1) + sum(f after p) < units. Monotone in p.
    std::size_t lo = 1, hi = k;  // position 0 never gives all, since the run covers units
    while (lo < hi) {
      const std::size_t p = (lo + hi) / 2;
      const std::int64_t fillTo = f[i + p] * static_cast<std::int64_t>(p + 1) + (prefix[i + k] - prefix[i + p + 1]);
      if (fillTo < units) hi = p;
      else lo = p + 1;
    }
    const std::size_t level = lo;
    const std::int64_t rest = units - (prefix[i + k] - prefix[i + level]);
    const std::int64_t base = rest / static_cast<std::int64_t>(level);
    const std::int64_t extra = rest % static_cast<std::int64_t>(level);
    const std::int64_t highest = base + (extra > 0 ? 1 : 0);
    const std::int64_t lowest = level < k ? f[i + k - 1] : base;
    return Split{level, base, extra, std::max<std::int64_t>(0, highest - lowest - 1)};
  };

  std::size_t kMin = 1;
  while (prefix[kMin] < units) ++kMin;
  std::size_t bestK = kMin;
  std::int64_t bestUnevenness = split(0, kMin).unevenness;
  for (std::size_t k = kMin + 1; k <= n && bestUnevenness > 0; ++k) {
    const std::int64_t unevenness = split(0, k).unevenness;
    if (unevenness < bestUnevenness) {
      bestUnevenness = unevenness;
      bestK = k;
    }
  }
  // Slide the run towards smaller devices while it stays as even (monotone in i).
  std::size_t lo = 0, hi = n - bestK;
  while (lo < hi) {
    const std::size_t i = (lo + hi + 1) / 2;
    const bool ok = prefix[i + bestK] - prefix[i] >= units && split(i, bestK).unevenness == bestUnevenness;
    if (ok) lo = i;
    else hi = i - 1;
  }
  // Runs with the same total are the same devices by free capacity: take the most preferred.
  const std::int64_t runTotal = prefix[lo + bestK] - prefix[lo];
  hi = lo;
  lo = 0;
  while (lo < hi) {
    const std::size_t i = (lo + hi) / 2;
    if (prefix[i + bestK] - prefix[i] == runTotal) hi = i;
    else lo = i + 1;
  }
  const std::size_t start = lo;
  const Split s = split(start, bestK);
  std::vector<Placement> out;
  std::int64_t extra = s.extra;
  for (std::size_t p = 0; p < bestK; ++p) {
    std::int64_t give = f[start + p];
    if (p < s.level) {
      give = s.base + (extra > 0 ? 1 : 0);
      if (extra > 0) --extra;
    }
    if (give > 0) out.push_back({order[start + p].device, give});
  }
  return out;
}

// Under the guard, a request larger than any device: the fewest devices that can each
// take a near-equal share, or a refusal as fragmented (Backend.AI refuses 2.8 over free
// 0.5, 0.5, 1, 1 rather than grant 0.5 + 0.3 + 1 + 1).
AllocMap::PlaceResult FractionAllocMap::placeNearEqualShares(std::int64_t units, Candidates& candidates) const {
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.free != b.free ? a.free > b.free : preferred(a, b);
  });
  std::vector<std::int64_t> mostFreeFirst;
  for (const Candidate& c : candidates) mostFreeFirst.push_back(c.free);
  for (std::size_t n = 2; n <= mostFreeFirst.size(); ++n) {
    if (splitsNearEqually(mostFreeFirst, units, n)) return nearEqualShares(units, n, candidates);
  }
  return Failure{error(AllocationErrorKind::FractionalResourceFragmented, toQuantity(units), largestFor(mostFreeFirst),
                       "free capacity is split so that no set of devices can each take a near-equal share")};
}

// Fill takes the freest devices; evenly the tightest that hold their share, so that the
// freest stay whole for later requests.
std::vector<AllocMap::Placement> FractionAllocMap::nearEqualShares(std::int64_t units, std::size_t devices,
                                                                   const Candidates& mostFreeFirst) const {
  const std::int64_t share = units / static_cast<std::int64_t>(devices);
  const auto larger = static_cast<std::size_t>(units % static_cast<std::int64_t>(devices));
  std::vector<Placement> out;
  if (strategy() == AllocationStrategy::Fill) {
    for (std::size_t i = 0; i < devices; ++i) out.push_back({mostFreeFirst[i].device, share + (i < larger ? 1 : 0)});
    return out;
  }
  auto holding = [&](std::int64_t amount) {
    return static_cast<std::size_t>(std::find_if(mostFreeFirst.begin(), mostFreeFirst.end(),
                                                 [&](const Candidate& c) { return c.free < amount; }) -
                                    mostFreeFirst.begin());
  };
  const std::size_t holdLarger = holding(share + 1), holdShare = holding(share);
  for (std::size_t i = holdLarger - larger; i < holdLarger; ++i) out.push_back({mostFreeFirst[i].device, share + 1});
  std::size_t rest = devices - larger;
  for (std::size_t i = holdShare; i > holdLarger && rest > 0; --i, --rest) out.push_back({mostFreeFirst[i - 1].device, share});
  for (std::size_t i = holdLarger - larger; i > 0 && rest > 0; --i, --rest) out.push_back({mostFreeFirst[i - 1].device, share});
  return out;
}

}  // namespace bai::core
