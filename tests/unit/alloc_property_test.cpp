// Seeded random alloc/free sequences: the invariants hold whatever the sequence.
#include "alloc_test_util.hpp"

#include <random>

namespace bai::core::testing {
namespace {

struct MapKind {
  bool fraction;
  AllocationStrategy strategy;
  bool guard;
  const char* minFree = "0";  // fraction maps: AllocMapOptions::minFree
};

std::string describe(const ::testing::TestParamInfo<MapKind>& info) {
  return std::string(info.param.fraction ? "Fraction" : "Discrete") +
         (info.param.strategy == AllocationStrategy::Fill ? "Fill" : "Evenly") + (info.param.guard ? "Guarded" : "") +
         (q(info.param.minFree).isZero() ? "" : "MinFree");
}

class RandomSequences : public ::testing::TestWithParam<MapKind> {
 protected:
  std::mt19937_64 rng{20261128};

  std::int64_t uniform(std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); }

  std::unique_ptr<AllocMap> randomMap(Quantity& unit) {
    const MapKind kind = GetParam();
    const int count = static_cast<int>(uniform(1, 12));
    const Quantity quanta[] = {q("0.01"), q("0.05"), q("0.1"), q("0.25"), Quantity(1)};
    unit = kind.fraction ? quanta[uniform(0, 4)] : Quantity(1);
    std::vector<DeviceSpec> specs;
    for (int i = 0; i < count; ++i) {
      const std::int64_t units = uniform(0, kind.fraction ? 8 * Quantity::kScale / unit.raw() : 8);
      specs.push_back({"dev" + std::to_string(i), Quantity::fromRaw(units * unit.raw()), static_cast<int>(uniform(-1, 2))});
    }
    if (kind.fraction) {
      return std::move(FractionAllocMap::create(SlotName::of("x"), SlotType::Count, specs, {kind.strategy, unit, kind.guard, q(kind.minFree)})
                           .value());
    }
    return std::move(DiscreteAllocMap::create(SlotName::of("x"), SlotType::Count, specs, {kind.strategy}).value());
  }

  AffinityHint randomHint() {
    AffinityHint hint{uniform(0, 1) ? AffinityPolicy::Interleaved : AffinityPolicy::PreferSingleNode, {}};
    for (int node = 0; node <= 2; ++node) {
      if (uniform(0, 2) == 0) hint.addNode(node);
    }
    return hint;
  }
};

TEST_P(RandomSequences, KeepTheInvariants) {
  for (int round = 0; round < 40; ++round) {
    Quantity unit;
    auto map = randomMap(unit);
    std::vector<Grants> live;
    for (int op = 0; op < 250; ++op) {
      const std::vector<Quantity> before = [&] {
        std::vector<Quantity> v;
        for (std::uint32_t i = 0; i < map->deviceCount(); ++i) v.push_back(map->allocated(i));
        return v;
      }();
      const int action = static_cast<int>(uniform(0, 9));
      if (action == 0 && map->deviceCount() > 0) {
        const auto device = static_cast<std::uint32_t>(uniform(0, static_cast<std::int64_t>(map->deviceCount()) - 1));
        map->setEnabled(device, !map->enabled(device));
        continue;
      }
      if (action <= 5 || live.empty()) {
        // Mostly multiples of the unit, sometimes not (must fail without a change).
        const std::int64_t maxUnits = map->capacityTotal().raw() / unit.raw() + 2;
        Quantity amount = Quantity::fromRaw(uniform(0, maxUnits) * unit.raw());
        const bool offQuantum = uniform(0, 9) == 0 && unit.raw() > 1;
        if (offQuantum) amount += Quantity::fromRaw(1);
        const Quantity largest = map->largestAllocatable();
        auto grants = map->allocate(amount, randomHint());
        if (!grants) {
          ASSERT_FALSE(!offQuantum && amount <= largest)
              << "largestAllocatable " << largest.toString() << " promised " << amount.toString() << ": "
              << grants.error().message;
          for (std::uint32_t i = 0; i < map->deviceCount(); ++i) ASSERT_EQ(map->allocated(i), before[i]);
          continue;
        }
        ASSERT_FALSE(offQuantum);
        Quantity total;
        std::uint32_t previous = 0;
        for (std::size_t k = 0; k < grants->size(); ++k) {
          const DeviceGrant& g = (*grants)[k];
          ASSERT_TRUE(k == 0 || g.device > previous) << "grants sorted by device, one per device";
          previous = g.device;
          ASSERT_GT(g.amount, Quantity());
          ASSERT_EQ(g.amount.raw() % unit.raw(), 0);
          ASSERT_TRUE(map->enabled(g.device));
          ASSERT_EQ(map->allocated(g.device), before[g.device] + g.amount);
          total += g.amount;
        }
        ASSERT_EQ(total, amount) << "granted total must equal the request exactly";
        if (GetParam().guard) {
          Quantity largestCapacity;
          for (std::uint32_t i = 0; i < map->deviceCount(); ++i) largestCapacity = std::max(largestCapacity, map->capacity(i));
          if (!amount.isZero() && amount <= largestCapacity) {
            ASSERT_EQ(grants->size(), 1u) << "the guard keeps " << amount.toString() << " whole";
          }
          Quantity least = amount, most;
          for (const DeviceGrant& g : *grants) {
            least = std::min(least, g.amount);
            most = std::max(most, g.amount);
          }
          ASSERT_LE(most - least, unit) << "the guard splits " << amount.toString() << " into near-equal shares";
        }
        if (GetParam().strategy == AllocationStrategy::Evenly) {
          for (const DeviceGrant& g : *grants) {
            ASSERT_GE(map->capacity(g.device) - before[g.device], q(GetParam().minFree)) << "min_free keeps it out";
          }
        }
        live.push_back(std::move(*grants));
      } else {
        const auto pick = static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(live.size()) - 1));
        ASSERT_TRUE(map->free(live[pick]).ok());
        for (const DeviceGrant& g : live[pick]) ASSERT_EQ(map->allocated(g.device), before[g.device] - g.amount);
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
      }
      for (std::uint32_t i = 0; i < map->deviceCount(); ++i) {
        ASSERT_LE(map->allocated(i), map->capacity(i));
        ASSERT_GE(map->allocated(i), Quantity());
      }
    }
    for (const Grants& g : live) ASSERT_TRUE(map->free(g).ok());
    ASSERT_EQ(map->allocatedTotal(), Quantity()) << "free restores exactly";
  }
}

INSTANTIATE_TEST_SUITE_P(Maps, RandomSequences,
                         ::testing::Values(MapKind{false, AllocationStrategy::Fill, false},
                                           MapKind{false, AllocationStrategy::Evenly, false},
                                           MapKind{true, AllocationStrategy::Fill, false},
                                           MapKind{true, AllocationStrategy::Evenly, false},
                                           MapKind{true, AllocationStrategy::Fill, true},
                                           MapKind{true, AllocationStrategy::Evenly, true},
                                           MapKind{true, AllocationStrategy::Evenly, false, "0.3"},
                                           MapKind{true, AllocationStrategy::Evenly, true, "0.3"}),
                         describe);

// Multi-slot requests over a whole node: failures leave every map bit-identical.
TEST(RandomNodeRequests, RollBackCompletely) {
  std::mt19937_64 rng(7);
  auto uniform = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
  for (auto policy : {AffinityPolicy::Interleaved, AffinityPolicy::PreferSingleNode}) {
    NodeAllocator node({{"cuda", "cpu", "mem"}, policy});
    ASSERT_TRUE(node.addMap(discrete({"1", "1", "1", "1"}, AllocationStrategy::Evenly, "cuda.device", SlotType::Count, 2)).ok());
    ASSERT_TRUE(node.addMap(discrete(Texts(16, "1"), AllocationStrategy::Evenly, "cpu", SlotType::Count, 2)).ok());
    ASSERT_TRUE(node.addMap(discrete({"64", "64"}, AllocationStrategy::Fill, "mem", SlotType::Bytes, 2)).ok());
    auto snapshot = [&] {
      std::vector<Texts> out;
      for (const auto& m : node.maps()) out.push_back(held(*m));
      return out;
    };
    std::vector<NodeAllocation> live;
    int failures = 0;
    for (int op = 0; op < 3000; ++op) {
      const auto before = snapshot();
      if (uniform(0, 2) > 0 || live.empty()) {
        ResourceSlot request{{SlotName::of("cuda.device"), uniform(0, 3)},
                             {SlotName::of("cpu"), uniform(0, 8)},
                             {SlotName::of("mem"), uniform(0, 80)}};
        auto result = node.allocate(request);
        if (!result) {
          ++failures;
          ASSERT_EQ(snapshot(), before) << result.error().message;
          continue;
        }
        ResourceSlot granted;
        for (const SlotGrants& s : *result) {
          for (const DeviceGrant& g : s.grants) granted = granted + ResourceSlot{{s.slot, g.amount}};
        }
        ASSERT_EQ(granted, request);
        live.push_back(std::move(*result));
      } else {
        const auto pick = static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(live.size()) - 1));
        ASSERT_TRUE(node.free(live[pick]).ok());
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
      }
    }
    EXPECT_GT(failures, 100) << "the sequence should exercise rollback";
    for (const NodeAllocation& a : live) ASSERT_TRUE(node.free(a).ok());
    EXPECT_TRUE(node.freeTotal() == node.capacity());
  }
}

}  // namespace
}  // namespace bai::core::testing
