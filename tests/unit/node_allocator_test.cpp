#include "alloc_test_util.hpp"

namespace bai::core::testing {
namespace {

using Kind = AllocationErrorKind;

// A node like a small GPU server: 4 GPUs and 8 cores on 2 NUMA nodes, memory per node.
class Node : public ::testing::Test {
 protected:
  void build(NodeAllocatorOptions options = {}) {
    allocator = NodeAllocator(options);
    add(discrete({"1", "1", "1", "1"}, AllocationStrategy::Evenly, "cuda.device", SlotType::Count, 2));
    add(fraction({"1", "1"}, AllocationStrategy::Evenly, "0.01", false, "cuda.shares"));
    add(discrete({"1", "1", "1", "1", "1", "1", "1", "1"}, AllocationStrategy::Evenly, "cpu", SlotType::Count, 2));
    add(discrete({"1024", "1024"}, AllocationStrategy::Evenly, "mem", SlotType::Bytes, 2));
    add(discrete({"2"}, AllocationStrategy::Fill, "acme.device"));
    add(discrete({"1"}, AllocationStrategy::Fill, "cuda.device:1g.10gb-mig", SlotType::Unique));
    allocator.addExclusiveSet({"cuda.device", "cuda.shares", "cuda.device:*-mig"});
  }
  void add(std::unique_ptr<AllocMap> map) { ASSERT_TRUE(allocator.addMap(std::move(map)).ok()); }

  std::vector<Texts> snapshot() const {
    std::vector<Texts> out;
    for (const auto& m : allocator.maps()) out.push_back(held(*m));
    return out;
  }
  ResourceSlot request(std::initializer_list<std::pair<const char*, const char*>> slots) {
    ResourceSlot out;
    for (const auto& [slot, amount] : slots) out.set(SlotName::of(slot), q(amount));
    return out;
  }
  AllocationError fails(const ResourceSlot& r, Kind kind) {
    const auto before = snapshot();
    auto result = allocator.allocate(r);
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(snapshot(), before) << "a failed request changed the maps";
    if (result.ok()) return {};
    EXPECT_EQ(result.error().kind, kind) << result.error().message;
    return result.error();
  }
  Texts grantedFor(const NodeAllocation& allocation, std::string_view slot) {
    for (const SlotGrants& s : allocation) {
      if (s.slot.str() == slot) return granted(*allocator.map(slot), s.grants);
    }
    return {};
  }

  NodeAllocator allocator;
};

TEST_F(Node, AllocatesInConfiguredOrderWithUnknownDevicesLast) {
  build();
  auto result = allocator.allocate(request({{"mem", "512"}, {"acme.device", "1"}, {"cpu", "2"}, {"cuda.device", "1"}}));
  ASSERT_TRUE(result.ok()) << result.error().message;
  std::vector<std::string> order;
  for (const SlotGrants& s : *result) order.push_back(s.slot.str());
  EXPECT_EQ(order, (std::vector<std::string>{"cuda.device", "cpu", "mem", "acme.device"}));

  NodeAllocator custom({{"cpu", "mem", "cuda"}, AffinityPolicy::Interleaved});
  ASSERT_TRUE(custom.addMap(discrete({"1"}, AllocationStrategy::Fill, "cuda.device")).ok());
  ASSERT_TRUE(custom.addMap(discrete({"1"}, AllocationStrategy::Fill, "cpu")).ok());
  ASSERT_TRUE(custom.addMap(discrete({"1"}, AllocationStrategy::Fill, "zeta.device")).ok());
  ASSERT_TRUE(custom.addMap(discrete({"1"}, AllocationStrategy::Fill, "beta.device")).ok());
  auto customResult = custom.allocate(request({{"cuda.device", "1"}, {"cpu", "1"}, {"zeta.device", "1"},
                                               {"beta.device", "1"}}));
  ASSERT_TRUE(customResult.ok());
  order.clear();
  for (const SlotGrants& s : *customResult) order.push_back(s.slot.str());
  EXPECT_EQ(order, (std::vector<std::string>{"cpu", "cuda.device", "beta.device", "zeta.device"}));
}

TEST_F(Node, LaterDeviceTypesPreferTheNumaNodesAlreadyChosen) {
  build();
  auto result = allocator.allocate(request({{"cuda.device", "1"}, {"cpu", "2"}, {"mem", "512"}}));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(grantedFor(*result, "cuda.device"), (Texts{"1", "0", "0", "0"}));
  EXPECT_EQ(grantedFor(*result, "cpu"), (Texts{"1", "1", "0", "0", "0", "0", "0", "0"}));
  // EVENLY still spreads over every node under the interleaved policy; the hint orders.
  EXPECT_EQ(grantedFor(*result, "mem"), (Texts{"256", "256"}));
}

TEST_F(Node, InterleavedSpreadsAcrossNodesWithoutAHint) {
  build();
  auto result = allocator.allocate(request({{"cuda.device", "2"}, {"cpu", "4"}}));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(grantedFor(*result, "cuda.device"), (Texts{"1", "0", "1", "0"}));
  EXPECT_EQ(grantedFor(*result, "cpu"), (Texts{"1", "1", "0", "0", "1", "1", "0", "0"}));
}

TEST_F(Node, PreferSingleNodeKeepsTheWholeRequestOnOneNode) {
  build({{"cuda", "rocm", "cpu", "mem"}, AffinityPolicy::PreferSingleNode});
  auto result = allocator.allocate(request({{"cuda.device", "2"}, {"cpu", "4"}, {"mem", "1024"}}));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(grantedFor(*result, "cuda.device"), (Texts{"1", "1", "0", "0"}));
  EXPECT_EQ(grantedFor(*result, "cpu"), (Texts{"1", "1", "1", "1", "0", "0", "0", "0"}));
  EXPECT_EQ(grantedFor(*result, "mem"), (Texts{"1024", "0"}));
  // The next request finds node 0 full and goes to node 1 as a whole.
  auto next = allocator.allocate(request({{"cuda.device", "1"}, {"cpu", "2"}}));
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(grantedFor(*next, "cuda.device"), (Texts{"0", "0", "1", "0"}));
  EXPECT_EQ(grantedFor(*next, "cpu"), (Texts{"0", "0", "0", "0", "1", "1", "0", "0"}));
}

// Upstream leaves earlier slots allocated when a later slot fails.
TEST_F(Node, AFailureOnALaterSlotRollsBackEveryMap) {
  build();
  ASSERT_TRUE(allocator.allocate(request({{"cpu", "3"}})).ok());
  AllocationError e = fails(request({{"cuda.device", "2"}, {"cpu", "4"}, {"mem", "4096"}}), Kind::InsufficientResource);
  EXPECT_EQ(e.slot, "mem");
  EXPECT_EQ(e.requested, Quantity(4096));
  EXPECT_EQ(e.allocatable, Quantity(2048));
  fails(request({{"cuda.device", "1"}, {"cpu", "1.5"}}), Kind::InvalidResourceArgument);
  fails(request({{"cuda.device", "1"}, {"acme.device", "3"}}), Kind::InsufficientResource);
}

TEST_F(Node, ExclusiveSlotsCannotBeCombined) {
  build();
  AllocationError e = fails(request({{"cuda.device", "1"}, {"cuda.shares", "0.5"}}), Kind::InvalidResourceCombination);
  EXPECT_NE(e.message.find("cuda.device"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("cuda.shares"), std::string::npos) << e.message;
  fails(request({{"cuda.device", "1"}, {"cuda.device:1g.10gb-mig", "1"}}), Kind::InvalidResourceCombination);
  // A zero amount is not a request.
  EXPECT_TRUE(allocator.allocate(request({{"cuda.device", "1"}, {"cuda.shares", "0"}})).ok());
}

TEST_F(Node, UnknownAndNegativeSlots) {
  build();
  AllocationError e = fails(request({{"cpu", "1"}, {"tpu.device", "1"}}), Kind::UnsupportedResource);
  EXPECT_EQ(e.slot, "tpu.device");
  EXPECT_TRUE(allocator.allocate(request({{"tpu.device", "0"}})).ok());
  fails(request({{"cpu", "-1"}}), Kind::InvalidResourceArgument);
}

TEST_F(Node, FreeAndApplyAreAllOrNothing) {
  build();
  auto result = allocator.allocate(request({{"cuda.device", "1"}, {"cpu", "2"}}));
  ASSERT_TRUE(result.ok());
  const auto allocated = snapshot();
  NodeAllocation corrupted = *result;
  corrupted.back().grants.front().amount = Quantity(5);  // more than the core holds
  ASSERT_FALSE(allocator.free(corrupted).ok());
  EXPECT_EQ(snapshot(), allocated);
  NodeAllocation unknown = *result;
  unknown.push_back(SlotGrants{SlotName::of("tpu.device"), {{0, Quantity(1)}}});
  auto unknownFree = allocator.free(unknown);
  ASSERT_FALSE(unknownFree.ok());
  EXPECT_EQ(unknownFree.error().kind, Kind::UnsupportedResource);
  EXPECT_EQ(snapshot(), allocated);

  ASSERT_TRUE(allocator.free(*result).ok());
  const auto empty = snapshot();
  ASSERT_TRUE(allocator.apply(*result).ok());
  EXPECT_EQ(snapshot(), allocated);
  ASSERT_FALSE(allocator.apply(*result).ok());  // the GPU is taken: nothing is applied twice
  EXPECT_EQ(snapshot(), allocated);
  allocator.clear();
  EXPECT_EQ(snapshot(), empty);
}

TEST_F(Node, ReportsCapacityFreeAndLargest) {
  build();
  ASSERT_TRUE(allocator.allocate(request({{"cpu", "3"}, {"cuda.device:1g.10gb-mig", "1"}})).ok());
  EXPECT_EQ(allocator.capacity().get("cpu"), Quantity(8));
  EXPECT_EQ(allocator.freeTotal().get("cpu"), Quantity(5));
  EXPECT_EQ(allocator.largestAllocatable().get("cpu"), Quantity(5));
  EXPECT_EQ(allocator.largestAllocatable().get("cuda.device:1g.10gb-mig"), Quantity(0));
  EXPECT_EQ(allocator.capacity().get("mem"), Quantity(2048));
}

// A disabled (unhealthy or masked) device is no capacity, except for what it still holds.
TEST_F(Node, ADisabledDeviceCountsOnlyForWhatItHolds) {
  build();
  AllocMap& gpus = *allocator.map("cuda.device");
  auto held = allocator.allocate(request({{"cuda.device", "2"}}));
  ASSERT_TRUE(held.ok());
  const std::uint32_t holding = held->front().grants.front().device;
  std::uint32_t idle = 0;
  while (gpus.allocated(idle) != Quantity()) ++idle;
  gpus.setEnabled(idle, false);
  gpus.setEnabled(holding, false);
  EXPECT_EQ(allocator.capacity().get("cuda.device"), Quantity(3)) << "the idle one leaves, the held one stays";
  EXPECT_EQ(allocator.capacity().get("cuda.device") - gpus.allocatedTotal(), gpus.freeTotal());
  ASSERT_TRUE(allocator.free(*held).ok());
  EXPECT_EQ(allocator.capacity().get("cuda.device"), Quantity(2)) << "it leaves service once its session ends";
}

TEST_F(Node, RefusesASecondMapForOneSlot) {
  build();
  auto duplicate = allocator.addMap(discrete({"1"}, AllocationStrategy::Fill, "cpu"));
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.error().message.find("cpu"), std::string::npos);
}

}  // namespace
}  // namespace bai::core::testing
