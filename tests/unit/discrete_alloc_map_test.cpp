#include "alloc_test_util.hpp"

namespace bai::core::testing {
namespace {

using Kind = AllocationErrorKind;
constexpr auto kFill = AllocationStrategy::Fill;
constexpr auto kEvenly = AllocationStrategy::Evenly;

class BothStrategies : public ::testing::TestWithParam<AllocationStrategy> {};
INSTANTIATE_TEST_SUITE_P(Discrete, BothStrategies, ::testing::Values(kFill, kEvenly));

TEST_P(BothStrategies, OneDeviceThenInsufficientThenFree) {
  auto map = discrete({"1", "1"}, GetParam());
  Grants grants = allocateOk(*map, "1");
  EXPECT_EQ(granted(*map, grants), (Texts{"1", "0"}));
  AllocationError e = allocateFails(*map, "3", Kind::InsufficientResource);
  EXPECT_EQ(e.allocatable, Quantity(1));
  EXPECT_NE(e.message.find("InsufficientResource: x:"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("requested 3, allocatable 1"), std::string::npos) << e.message;
  ASSERT_TRUE(map->free(grants).ok());
  EXPECT_EQ(held(*map), (Texts{"0", "0"}));
}

TEST(DiscreteFill, FillsTheMostFreeDeviceFirst) {
  auto map = discrete({"100", "100"}, kFill);
  EXPECT_EQ(granted(*map, allocateOk(*map, "130")), (Texts{"100", "30"}));
  allocateFails(*map, "71", Kind::InsufficientResource);
  EXPECT_EQ(granted(*map, allocateOk(*map, "70")), (Texts{"0", "70"}));
}

TEST(DiscreteEvenly, UpstreamVectorsLargeNumbers) {
  auto map = discrete({"100", "100"}, kEvenly);
  Grants first = allocateOk(*map, "130");
  EXPECT_EQ(granted(*map, first), (Texts{"65", "65"}));
  Grants second = allocateOk(*map, "15");
  EXPECT_EQ(granted(*map, second), (Texts{"8", "7"}));
  EXPECT_EQ(held(*map), (Texts{"73", "72"}));
  allocateFails(*map, "99", Kind::InsufficientResource);
  ASSERT_TRUE(map->free(first).ok());
  ASSERT_TRUE(map->free(second).ok());
  EXPECT_EQ(held(*map), (Texts{"0", "0"}));
}

TEST(DiscreteEvenly, UpstreamVectorsTightFill) {
  auto map = discrete({"10", "10", "10"}, kEvenly);
  EXPECT_EQ(granted(*map, allocateOk(*map, "7")), (Texts{"3", "2", "2"}));
  EXPECT_EQ(granted(*map, allocateOk(*map, "23")), (Texts{"7", "8", "8"}));
  EXPECT_EQ(held(*map), (Texts{"10", "10", "10"}));
}

TEST(DiscreteEvenly, UpstreamVectorsCpuCores) {
  auto map = discrete({"2", "2", "2", "2"}, kEvenly, "cpu");
  EXPECT_EQ(granted(*map, allocateOk(*map, "4")), (Texts{"1", "1", "1", "1"}));
  EXPECT_EQ(granted(*map, allocateOk(*map, "2")), (Texts{"1", "1", "0", "0"}));
  allocateFails(*map, "3", Kind::InsufficientResource);
  EXPECT_EQ(granted(*map, allocateOk(*map, "2")), (Texts{"0", "0", "1", "1"}));
  EXPECT_EQ(held(*map), (Texts{"2", "2", "2", "2"}));
}

TEST(DiscreteEvenly, PrefersTheFreerDeviceForTheRemainder) {
  auto map = discrete({"2", "2", "2"}, kEvenly);
  ASSERT_TRUE(map->apply({{0, Quantity(1)}}).ok());
  EXPECT_EQ(granted(*map, allocateOk(*map, "1")), (Texts{"0", "1", "0"}));
}

// Upstream's FILL grants 1.5 devices; bai refuses and names the valid amounts.
TEST_P(BothStrategies, RefusesFractionsOfWholeUnits) {
  auto map = discrete({"1", "1"}, GetParam(), "cuda.device");
  AllocationError e = allocateFails(*map, "1.5", Kind::InvalidResourceArgument);
  EXPECT_NE(e.message.find("whole numbers"), std::string::npos) << e.message;
  EXPECT_EQ(e.nearestValid, (std::vector<Quantity>{1, 2}));
}

// Upstream drops negative requests silently.
TEST_P(BothStrategies, RefusesNegativeAndInfiniteAmounts) {
  auto map = discrete({"4"}, GetParam());
  EXPECT_NE(allocateFails(*map, "-1", Kind::InvalidResourceArgument).message.find("negative"), std::string::npos);
  EXPECT_NE(allocateFails(*map, "Infinity", Kind::InvalidResourceArgument).message.find("infinite"),
            std::string::npos);
}

TEST_P(BothStrategies, ZeroIsAnEmptyGrant) {
  auto map = discrete({"4"}, GetParam());
  EXPECT_TRUE(allocateOk(*map, "0").empty());
  EXPECT_EQ(held(*map), (Texts{"0"}));
}

TEST_P(BothStrategies, UniqueSlotsTakeExactlyOne) {
  auto map = discrete({"1", "1"}, GetParam(), "cuda.device:1g.10gb-mig", SlotType::Unique);
  EXPECT_NE(allocateFails(*map, "2", Kind::InvalidResourceArgument).message.find("exactly 1"), std::string::npos);
  EXPECT_EQ(map->largestAllocatable(), Quantity(1));
  allocateOk(*map, "1");
  allocateOk(*map, "1");
  EXPECT_EQ(map->largestAllocatable(), Quantity(0));
  allocateFails(*map, "1", Kind::InsufficientResource);
}

TEST(DiscreteAllocMap, UnifiedSlotsAreNotAllocated) {
  auto map = discrete({"1"}, kEvenly, "shmem", SlotType::Unified);
  EXPECT_NE(allocateFails(*map, "1", Kind::InvalidResourceArgument).message.find("unified"), std::string::npos);
}

// Upstream subtracts blindly: over-freeing makes capacity negative, then a device of
// capacity 1 is granted 2.
TEST_P(BothStrategies, FreeingMoreThanHeldIsRefusedAndChangesNothing) {
  auto map = discrete({"1", "1"}, GetParam());
  Grants grants = allocateOk(*map, "1");
  Grants twice = grants;
  twice.push_back(grants.front());
  auto overFree = map->free(twice);
  ASSERT_FALSE(overFree.ok());
  EXPECT_EQ(overFree.error().kind, Kind::InvalidResourceArgument);
  EXPECT_NE(overFree.error().message.find("freeing more than device 'd0' holds"), std::string::npos)
      << overFree.error().message;
  EXPECT_EQ(held(*map), (Texts{"1", "0"}));

  auto foreign = map->free({{7, Quantity(1)}});
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.error().message.find("no device with index 7"), std::string::npos);
  auto fractional = map->free({{0, q("0.5")}});
  ASSERT_FALSE(fractional.ok());
  EXPECT_NE(fractional.error().message.find("not a valid amount"), std::string::npos);
  auto negative = map->free({{0, Quantity(-1)}});
  ASSERT_FALSE(negative.ok());

  ASSERT_TRUE(map->free(grants).ok());
  auto again = map->free(grants);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(held(*map), (Texts{"0", "0"}));
  EXPECT_EQ(map->largestAllocatable(), Quantity(2));
}

TEST_P(BothStrategies, ApplyRestoresAndRefusesOverCapacity) {
  auto map = discrete({"2", "2"}, GetParam());
  ASSERT_TRUE(map->apply({{0, Quantity(2)}, {1, Quantity(1)}}).ok());
  EXPECT_EQ(held(*map), (Texts{"2", "1"}));
  auto over = map->apply({{1, Quantity(2)}});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().kind, Kind::InsufficientResource);
  EXPECT_EQ(held(*map), (Texts{"2", "1"}));
  map->clear();
  EXPECT_EQ(held(*map), (Texts{"0", "0"}));
}

TEST_P(BothStrategies, DisabledDevicesGetNothingButKeepWhatTheyHold) {
  auto map = discrete({"1", "1", "1"}, GetParam());
  Grants held0 = allocateOk(*map, "1");
  ASSERT_EQ(granted(*map, held0), (Texts{"1", "0", "0"}));
  map->setEnabled(0, false);
  map->setEnabled(1, false);
  EXPECT_FALSE(map->enabled(1));
  EXPECT_EQ(map->freeTotal(), Quantity(1));
  EXPECT_EQ(map->largestAllocatable(), Quantity(1));
  EXPECT_EQ(granted(*map, allocateOk(*map, "1")), (Texts{"0", "0", "1"}));
  allocateFails(*map, "1", Kind::InsufficientResource);
  EXPECT_EQ(held(*map), (Texts{"1", "0", "1"}));
  ASSERT_TRUE(map->free(held0).ok());  // what a disabled device held is still freed normally
  map->setEnabled(1, true);
  EXPECT_EQ(granted(*map, allocateOk(*map, "1")), (Texts{"0", "1", "0"}));
}

TEST(DiscreteAllocMap, Totals) {
  auto map = discrete({"4", "4", "8"}, kFill);
  allocateOk(*map, "6");
  EXPECT_EQ(map->capacityTotal(), Quantity(16));
  EXPECT_EQ(map->allocatedTotal(), Quantity(6));
  EXPECT_EQ(map->freeTotal(), Quantity(10));
  EXPECT_EQ(map->largestAllocatable(), Quantity(10));
  EXPECT_EQ(map->findDevice("d2"), 2u);
  EXPECT_FALSE(map->findDevice("nope").has_value());
}

TEST(DiscreteAllocMap, BytesSlotsAllocateWholeBytes) {
  auto map = discrete({"1099511627776", "1099511627776"}, kEvenly, "mem", SlotType::Bytes);
  EXPECT_EQ(granted(*map, allocateOk(*map, "68719476736")), (Texts{"34359738368", "34359738368"}));
  EXPECT_EQ(granted(*map, allocateOk(*map, "3")), (Texts{"2", "1"}));
}

TEST(DiscreteAllocMap, CreateRejectsBadDevices) {
  auto check = [](std::vector<DeviceSpec> specs, std::string_view mentions) {
    auto map = DiscreteAllocMap::create(SlotName::of("x"), SlotType::Count, specs);
    ASSERT_FALSE(map.ok()) << mentions;
    EXPECT_NE(map.error().message.find(mentions), std::string::npos) << map.error().message;
  };
  check({{"a", 1, -1}, {"a", 1, -1}}, "duplicate device id");
  check({{"", 1, -1}}, "empty id");
  check({{"a", q("1.5"), -1}}, "not a whole number");
  check({{"a", -1, -1}}, "not negative");
  check({{"a", Quantity::infinity(), -1}}, "finite");
  check({{"a", 1, -5}}, "NUMA node");
  check({{"a", Quantity(std::int64_t{1} << 53), -1}}, "too large");
}

TEST(DiscreteAllocMap, PreferSingleNodeKeepsARequestOnOneNode) {
  // d0, d1 on node 0; d2, d3 on node 1.
  auto map = discrete({"1", "1", "1", "1"}, kEvenly, "cuda.device", SlotType::Count, 2);
  AffinityHint single{AffinityPolicy::PreferSingleNode, {}};
  EXPECT_EQ(granted(*map, allocateOk(*map, "2", single)), (Texts{"1", "1", "0", "0"}));
  map->clear();
  AffinityHint interleaved{AffinityPolicy::Interleaved, {}};
  EXPECT_EQ(granted(*map, allocateOk(*map, "2", interleaved)), (Texts{"1", "0", "1", "0"}));
  map->clear();
  // With a hint for node 1, both policies start there.
  AffinityHint hinted{AffinityPolicy::PreferSingleNode, {1}};
  EXPECT_EQ(granted(*map, allocateOk(*map, "2", hinted)), (Texts{"0", "0", "1", "1"}));
  // Too big for one node: falls back to all nodes.
  map->clear();
  EXPECT_EQ(granted(*map, allocateOk(*map, "3", single)), (Texts{"1", "1", "1", "0"}));
}

}  // namespace
}  // namespace bai::core::testing

namespace bai::core::testing {
namespace {

TEST(DiscreteAllocMap, DevicesOfUnknownNumaNodeSuitAnyHint) {
  auto map = std::move(DiscreteAllocMap::create(SlotName::of("acme.device"), SlotType::Count,
                                                {{"a0", 1, 0}, {"a1", 1, -1}, {"a2", 1, 1}},
                                                {AllocationStrategy::Evenly})
                           .value());
  EXPECT_EQ(granted(*map, allocateOk(*map, "2", AffinityHint(AffinityPolicy::Interleaved, {1}))),
            (Texts{"0", "1", "1"}));
}

}  // namespace
}  // namespace bai::core::testing
