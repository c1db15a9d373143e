#include "alloc_test_util.hpp"

#include <numeric>

namespace bai::core::testing {
namespace {

using Kind = AllocationErrorKind;
constexpr auto kFill = AllocationStrategy::Fill;
constexpr auto kEvenly = AllocationStrategy::Evenly;

Quantity sum(const Grants& grants) {
  Quantity total;
  for (const DeviceGrant& g : grants) total += g.amount;
  return total;
}

TEST(FractionFill, UpstreamVectorQuarterQuantum) {
  auto map = fraction({"1", "1"}, kFill, "0.25");
  Grants grants = allocateOk(*map, "1.5");
  EXPECT_EQ(granted(*map, grants), (Texts{"1", "0.5"}));
  allocateFails(*map, "1.5", Kind::InsufficientResource);
  ASSERT_TRUE(map->free(grants).ok());
  EXPECT_EQ(held(*map), (Texts{"0", "0"}));
}

TEST(FractionFill, ManyDevices) {
  auto map = fraction({"1", "1", "1", "1", "1", "1", "1", "1"}, kFill);
  EXPECT_EQ(granted(*map, allocateOk(*map, "7.95")), (Texts{"1", "1", "1", "1", "1", "1", "1", "0.95"}));
  allocateFails(*map, "1", Kind::InsufficientResource);
}

TEST(FractionFill, TinyQuantumIterations) {
  auto map = fraction({"1", "1"}, kFill, "0.00001");
  for (int i = 0; i < 1000; ++i) allocateOk(*map, "0.00001");
  EXPECT_EQ(held(*map), (Texts{"0.005", "0.005"}));
}

TEST(FractionEvenly, UpstreamVectorThreeDevices) {
  auto map = fraction({"1", "1", "1"}, kEvenly);
  ASSERT_TRUE(map->apply({{0, q("0.7")}, {1, q("0.7")}, {2, q("0.1")}}).ok());  // free 0.3, 0.3, 0.9
  EXPECT_EQ(granted(*map, allocateOk(*map, "1")), (Texts{"0.3", "0.3", "0.4"}));
}

TEST(FractionEvenly, UpstreamVectorFewestEvenDevices) {
  auto map = fraction({"0.05", "0.1", "0.2", "0.3", "0"}, kEvenly);
  EXPECT_EQ(granted(*map, allocateOk(*map, "0.5")), (Texts{"0", "0", "0.2", "0.3", "0"}));
}

TEST(FractionEvenly, BestSingleFit) {
  auto map = fraction({"1", "1", "1"}, kEvenly);
  ASSERT_TRUE(map->apply({{1, q("0.5")}, {2, q("0.7")}}).ok());  // free 1, 0.5, 0.3
  EXPECT_EQ(granted(*map, allocateOk(*map, "0.4")), (Texts{"0", "0.4", "0"}));
  EXPECT_EQ(granted(*map, allocateOk(*map, "0.3")), (Texts{"0", "0", "0.3"}));
  EXPECT_EQ(granted(*map, allocateOk(*map, "1")), (Texts{"1", "0", "0"}));
}

TEST(FractionEvenly, SplitsEvenlyAcrossWholeDevices) {
  auto map = fraction({"1", "1", "1", "1", "1", "1", "1", "1"}, kEvenly);
  Grants grants = allocateOk(*map, "2.5");
  EXPECT_EQ(sum(grants), q("2.5"));
  EXPECT_EQ(grants.size(), 3u);
  EXPECT_EQ(granted(*map, grants), (Texts{"0.84", "0.83", "0.83", "0", "0", "0", "0", "0"}));
}

// Upstream splits in steps of 0.01 whatever the quantum, then rounds each part down to
// the quantum: with quantum 0.1 a request of 1.1 is granted 1.0.
TEST(FractionEvenly, GrantsExactlyTheRequestForCoarseQuanta) {
  auto map = fraction({"1", "1", "1"}, kEvenly, "0.1");
  Grants grants = allocateOk(*map, "1.1");
  EXPECT_EQ(sum(grants), q("1.1"));
  for (const DeviceGrant& g : grants) EXPECT_EQ(g.amount.raw() % q("0.1").raw(), 0) << g.amount.toString();
  EXPECT_EQ(granted(*map, grants), (Texts{"0.6", "0.5", "0"}));
}

// ... and with a quantum finer than 0.01 it grants more or less than asked.
TEST(FractionEvenly, GrantsExactlyTheRequestForFineQuanta) {
  auto map = fraction({"1", "1", "1"}, kEvenly, "0.001");
  Grants grants = allocateOk(*map, "1.001");
  EXPECT_EQ(sum(grants), q("1.001"));
  EXPECT_EQ(granted(*map, grants), (Texts{"0.501", "0.5", "0"}));
}

// Upstream shrinks such a request silently; bai refuses and names the valid amounts.
TEST(FractionAllocMap, NotAMultipleOfTheQuantum) {
  for (auto strategy : {kFill, kEvenly}) {
    auto map = fraction({"1", "1"}, strategy, "0.1");
    AllocationError e = allocateFails(*map, "0.15", Kind::NotMultipleOfQuantum);
    EXPECT_EQ(e.nearestValid, (std::vector<Quantity>{q("0.1"), q("0.2")}));
    EXPECT_NE(e.message.find("nearest valid amounts: 0.1, 0.2"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("quantum 0.1"), std::string::npos) << e.message;
    AllocationError small = allocateFails(*map, "0.05", Kind::NotMultipleOfQuantum);
    EXPECT_EQ(small.nearestValid, (std::vector<Quantity>{q("0.1")}));
  }
}

// Upstream's fraction EVENLY does not enforce unique slots.
TEST(FractionAllocMap, UniqueSlotsTakeExactlyOne) {
  for (auto strategy : {kFill, kEvenly}) {
    auto map = fraction({"1", "1"}, strategy, "0.01", false, "npu.slice", SlotType::Unique);
    allocateFails(*map, "2", Kind::InvalidResourceArgument);
    allocateFails(*map, "0.5", Kind::InvalidResourceArgument);
    allocateOk(*map, "1");
  }
}

TEST(FractionAllocMap, CapacityIsUsedInWholeQuanta) {
  auto map = fraction({"0.75"}, kFill, "0.1");
  EXPECT_EQ(map->capacityTotal(), q("0.7"));
  allocateFails(*map, "0.8", Kind::InsufficientResource);
  allocateOk(*map, "0.7");
}

TEST(FractionAllocMap, RejectsABadQuantum) {
  for (const char* quantum : {"0", "-0.1", "Infinity"}) {
    AllocMapOptions options{kEvenly, q(quantum), false};
    auto map = FractionAllocMap::create(SlotName::of("x"), SlotType::Count, devices({"1"}), options);
    ASSERT_FALSE(map.ok()) << quantum;
    EXPECT_NE(map.error().message.find("quantum must be positive"), std::string::npos);
  }
}

TEST(FractionAllocMap, FreeMustMatchTheQuantum) {
  auto map = fraction({"1"}, kEvenly, "0.1");
  allocateOk(*map, "0.5");
  auto bad = map->free({{0, q("0.25")}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(held(*map), (Texts{"0.5"}));
  ASSERT_TRUE(map->free({{0, q("0.2")}}).ok());
  EXPECT_EQ(held(*map), (Texts{"0.3"}));
}

class Guard : public ::testing::TestWithParam<AllocationStrategy> {};
INSTANTIATE_TEST_SUITE_P(Fraction, Guard, ::testing::Values(kFill, kEvenly));

TEST_P(Guard, RefusesToSplitWhatFitsOneDevice) {
  auto guarded = fraction({"1", "1"}, GetParam(), "0.01", true);
  ASSERT_TRUE(guarded->apply({{0, q("0.6")}, {1, q("0.6")}}).ok());  // free 0.4 + 0.4
  EXPECT_EQ(guarded->freeTotal(), q("0.8"));
  EXPECT_EQ(guarded->largestAllocatable(), q("0.4"));
  AllocationError e = allocateFails(*guarded, "0.6", Kind::FractionalResourceFragmented);
  EXPECT_EQ(e.allocatable, q("0.4"));
  allocateOk(*guarded, "0.4");

  auto unguarded = fraction({"1", "1"}, GetParam(), "0.01", false);
  ASSERT_TRUE(unguarded->apply({{0, q("0.6")}, {1, q("0.6")}}).ok());
  EXPECT_EQ(unguarded->largestAllocatable(), q("0.8"));
  EXPECT_EQ(sum(allocateOk(*unguarded, "0.6")), q("0.6"));
}

TEST_P(Guard, AllowsSpanningForMoreThanOneDevice) {
  auto map = fraction({"1", "1", "1"}, GetParam(), "0.01", true);
  EXPECT_EQ(map->largestAllocatable(), Quantity(3));
  EXPECT_EQ(sum(allocateOk(*map, "1.5")), q("1.5"));
}

// Devices of capacity 1 with `free` left on each, the rest held.
std::unique_ptr<FractionAllocMap> withFree(const std::vector<std::string>& free, AllocationStrategy strategy,
                                           bool guard = true, std::string_view minFree = "0") {
  auto map = FractionAllocMap::create(SlotName::of("x"), SlotType::Count,
                                      devices(std::vector<std::string>(free.size(), "1")),
                                      {strategy, q("0.01"), guard, q(minFree)});
  EXPECT_TRUE(map.ok()) << map.error().message;
  Grants held;
  for (std::uint32_t i = 0; i < free.size(); ++i) {
    if (q(free[i]) < Quantity(1)) held.push_back({i, Quantity(1) - q(free[i])});
  }
  EXPECT_TRUE((*map)->apply(held).ok());
  return std::move(map).value();
}

// Backend.AI's anti-fragmentation guard: more than a device holds is split into
// near-equal shares or refused, never granted as 0.5 + 0.3 + 1 + 1.
TEST_P(Guard, RefusesASplitIntoUnequalShares) {
  for (const auto& [free, amount] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"0.5", "0.5", "1", "1"}, "2.8"}, {{"0.8", "0.8", "0.8", "1"}, "3.3"}, {{"0.2", "1", "1"}, "2.1"}}) {
    auto map = withFree(free, GetParam());
    const std::vector<std::string> before = held(*map);
    AllocationError e = allocateFails(*map, amount, Kind::FractionalResourceFragmented);
    EXPECT_LT(e.allocatable, q(amount)) << amount;
    EXPECT_EQ(held(*map), before);
  }
}

TEST_P(Guard, SplitsIntoTheFewestNearEqualShares) {
  auto quarters = withFree({"0.5", "0.5", "0.5", "0.5"}, GetParam());
  Grants grants = allocateOk(*quarters, "1.5");
  EXPECT_EQ(grants.size(), 3u);
  for (const DeviceGrant& g : grants) EXPECT_EQ(g.amount, q("0.5"));

  auto uneven = withFree({"0.75", "0.8"}, GetParam());
  EXPECT_EQ(granted(*uneven, allocateOk(*uneven, "1.51")), (Texts{"0.75", "0.76"})) << "one quantum more on one";

  auto halves = withFree({"0.5", "0.5", "1", "1"}, GetParam());
  EXPECT_EQ(granted(*halves, allocateOk(*halves, "1.6")), (Texts{"0", "0", "0.8", "0.8"}));
}

TEST(FractionEvenly, GuardedSharesGoToTheTightestDevicesThatHoldThem) {
  auto map = withFree({"1", "0.8", "0.4", "0.8"}, kEvenly);
  EXPECT_EQ(granted(*map, allocateOk(*map, "1.51")), (Texts{"0", "0.75", "0", "0.76"}));
}

// Every amount up to largestAllocatable is granted, the next one is not.
TEST_P(Guard, LargestAllocatableIsTheLargestNearEqualSplit) {
  auto map = withFree({"0.5", "0.5", "1", "1"}, GetParam());
  EXPECT_EQ(map->largestAllocatable(), q("2.02"));
  allocateFails(*map, "2.03", Kind::FractionalResourceFragmented);
  EXPECT_EQ(granted(*map, allocateOk(*map, "2.02")), (Texts{"0.5", "0.5", "0.51", "0.51"}));
}

// Backend.AI's min_memory: under evenly, a device with less free takes no part.
TEST(FractionEvenly, MinFreeKeepsNearlyFullDevicesOut) {
  auto map = withFree({"0.05", "1"}, kEvenly, false, "0.1");
  EXPECT_EQ(map->largestAllocatable(), Quantity(1));
  EXPECT_EQ(granted(*map, allocateOk(*map, "0.05")), (Texts{"0", "0.05"}));
  allocateFails(*map, "1", Kind::InsufficientResource);

  auto without = withFree({"0.05", "1"}, kEvenly, false);
  EXPECT_EQ(granted(*without, allocateOk(*without, "0.05")), (Texts{"0.05", "0"})) << "the tightest fit";

  auto filling = withFree({"0.05", "1"}, kFill, false, "0.1");
  EXPECT_EQ(filling->largestAllocatable(), q("1.05")) << "fill ignores min_free";
}

TEST(FractionEvenly, MinFreeMustBeAnAmount) {
  auto map = FractionAllocMap::create(SlotName::of("x"), SlotType::Count, devices({"1"}),
                                      {kEvenly, q("0.01"), false, q("-0.1")});
  ASSERT_FALSE(map.ok());
  EXPECT_NE(map.error().message.find("min_free"), std::string::npos) << map.error().message;
}

}  // namespace
}  // namespace bai::core::testing

namespace bai::core::testing {
namespace {

std::unique_ptr<FractionAllocMap> onNodes(std::vector<DeviceSpec> specs) {
  return std::move(FractionAllocMap::create(SlotName::of("cuda.shares"), SlotType::Count, specs,
                                            {AllocationStrategy::Evenly, q("0.01"), false})
                       .value());
}

TEST(FractionEvenly, BestFitPrefersTheHintedNode) {
  auto map = onNodes({{"g0", 1, 0}, {"g1", 1, 1}});
  ASSERT_TRUE(map->apply({{1, q("0.5")}}).ok());  // g1 has 0.5 free: the tightest fit
  EXPECT_EQ(granted(*map, allocateOk(*map, "0.5", AffinityHint(AffinityPolicy::Interleaved, {0}))), (Texts{"0.5", "0"}));
  auto unhinted = onNodes({{"g0", 1, 0}, {"g1", 1, 1}});
  ASSERT_TRUE(unhinted->apply({{1, q("0.5")}}).ok());
  EXPECT_EQ(granted(*unhinted, allocateOk(*unhinted, "0.5")), (Texts{"0", "0.5"}));
}

TEST(FractionEvenly, ASplitStaysOnTheHintedNodesWhenTheyHoldIt) {
  auto make = [] {
    auto map = onNodes({{"g0", 1, 0}, {"g1", 1, 0}, {"g2", 1, 1}, {"g3", 1, 1}});
    EXPECT_TRUE(map->apply({{2, q("0.3")}, {3, q("0.3")}}).ok());
    return map;
  };
  auto unhinted = make();  // best fit picks the smaller devices on node 1
  EXPECT_EQ(granted(*unhinted, allocateOk(*unhinted, "1.2")), (Texts{"0", "0", "0.6", "0.6"}));
  auto hinted = make();
  EXPECT_EQ(granted(*hinted, allocateOk(*hinted, "1.2", AffinityHint(AffinityPolicy::Interleaved, {0}))),
            (Texts{"0.6", "0.6", "0", "0"}));
}

}  // namespace
}  // namespace bai::core::testing
