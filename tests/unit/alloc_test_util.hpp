// Helpers shared by the allocation map tests.
#pragma once

#include "alloc/alloc_map.hpp"
#include "alloc/node_allocator.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bai::core::testing {

inline Quantity q(std::string_view text) { return Quantity::parse(text).value(); }

inline std::vector<DeviceSpec> devices(const std::vector<std::string>& capacities, int numaNodes = 0) {
  std::vector<DeviceSpec> out;
  for (std::size_t i = 0; i < capacities.size(); ++i) {
    const int node = numaNodes > 0 ? static_cast<int>(i * static_cast<std::size_t>(numaNodes) / capacities.size()) : -1;
    out.push_back(DeviceSpec{"d" + std::to_string(i), q(capacities[i]), node});
  }
  return out;
}

inline std::unique_ptr<DiscreteAllocMap> discrete(const std::vector<std::string>& capacities, AllocationStrategy strategy,
                                                  std::string slot = "x", SlotType type = SlotType::Count,
                                                  int numaNodes = 0) {
  auto map = DiscreteAllocMap::create(SlotName::of(slot), type, devices(capacities, numaNodes), {strategy});
  EXPECT_TRUE(map.ok()) << map.error().message;
  return std::move(map).value();
}

inline std::unique_ptr<FractionAllocMap> fraction(const std::vector<std::string>& capacities,
                                                  AllocationStrategy strategy, std::string_view quantum = "0.01",
                                                  bool guard = false, std::string slot = "x",
                                                  SlotType type = SlotType::Count) {
  AllocMapOptions options{strategy, q(quantum), guard};
  auto map = FractionAllocMap::create(SlotName::of(slot), type, devices(capacities), options);
  EXPECT_TRUE(map.ok()) << map.error().message;
  return std::move(map).value();
}

// What each device holds, as text: {"1", "0.5", "0"}.
inline std::vector<std::string> held(const AllocMap& map) {
  std::vector<std::string> out;
  for (std::uint32_t i = 0; i < map.deviceCount(); ++i) out.push_back(map.allocated(i).toString());
  return out;
}

// A grant as text per device, "0" where a device got nothing.
inline std::vector<std::string> granted(const AllocMap& map, const Grants& grants) {
  std::vector<std::string> out(map.deviceCount(), "0");
  for (const DeviceGrant& g : grants) out.at(g.device) = g.amount.toString();
  return out;
}

inline Grants allocateOk(AllocMap& map, std::string_view amount, const AffinityHint& hint = {}) {
  auto grants = map.allocate(q(amount), hint);
  EXPECT_TRUE(grants.ok()) << amount << ": " << grants.error().message;
  return grants.ok() ? *grants : Grants{};
}

inline AllocationError allocateFails(AllocMap& map, std::string_view amount, AllocationErrorKind kind) {
  const auto before = held(map);
  auto grants = map.allocate(q(amount));
  EXPECT_FALSE(grants.ok()) << amount << " was granted";
  if (grants.ok()) return {};
  EXPECT_EQ(grants.error().kind, kind) << grants.error().message;
  EXPECT_EQ(held(map), before) << "a failed allocation changed the map";
  EXPECT_EQ(grants.error().slot, map.slot().str());
  EXPECT_EQ(grants.error().requested, q(amount));
  return grants.error();
}

using Texts = std::vector<std::string>;

}  // namespace bai::core::testing
