// FractionAllocMap: shares of devices that sessions share (cuda.shares and the like).
#include "alloc_map.hpp"

#include "alloc_units.hpp"

#include <algorithm>
#include <numeric>

namespace bai::core {

using alloc_units::divideExactly;
using alloc_units::kMaxTotalUnits;

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
