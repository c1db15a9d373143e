#include <bai/slots.hpp>

#include <gtest/gtest.h>

#include <stdexcept>

namespace bai {
namespace {

TEST(SlotName, Parts) {
  const SlotName mig = SlotName::of("cuda.device:1g.10gb-mig");
  EXPECT_EQ(mig.device(), "cuda");
  EXPECT_EQ(mig.major(), "device");
  EXPECT_EQ(mig.minor(), "1g.10gb-mig");

  const SlotName cpu = SlotName::of("cpu");
  EXPECT_EQ(cpu.device(), "cpu");
  EXPECT_EQ(cpu.major(), "");
  EXPECT_EQ(cpu.minor(), "");

  const SlotName shares = SlotName::of("cuda.shares");
  EXPECT_EQ(shares.device(), "cuda");
  EXPECT_EQ(shares.major(), "shares");
  EXPECT_EQ(shares.minor(), "");
}

TEST(SlotName, AcceptsVendorNames) {
  for (const char* name : {"mem", "rocm.device", "acme.device", "cuda.device:10g-mig", "x", "my_npu.core-group",
                           "cuda.device:1g.10gb+me-mig"}) {
    EXPECT_TRUE(SlotName::parse(name).ok()) << name;
  }
}

TEST(SlotName, OrdersByText) {
  EXPECT_LT(SlotName::of("cpu"), SlotName::of("cuda.device"));
  EXPECT_EQ(SlotName::of("mem"), SlotName::of("mem"));
}

struct BadName {
  const char* text;
  const char* mentions;
};

class SlotNameRejects : public testing::TestWithParam<BadName> {};

TEST_P(SlotNameRejects, NamingTheProblem) {
  auto parsed = SlotName::parse(GetParam().text);
  ASSERT_FALSE(parsed.ok()) << GetParam().text;
  EXPECT_EQ(parsed.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(parsed.error().message.find(GetParam().mentions), std::string::npos) << parsed.error().message;
  EXPECT_THROW(SlotName::of(GetParam().text), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Inputs, SlotNameRejects,
                         testing::Values(BadName{"", "empty"}, BadName{"Cuda.device", "device part"},
                                         BadName{"1cuda", "device part"}, BadName{"cuda.", "major part"},
                                         BadName{".device", "device part"}, BadName{"cuda..device", "major part"},
                                         BadName{"cuda:mig", "needs a '.major'"},
                                         BadName{"cuda.device:", "minor part"},
                                         BadName{"cuda.dev ice", "major part"},
                                         BadName{"cuda.device:a:b", "minor part"},
                                         BadName{"cpu/0", "device part"},
                                         BadName{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                                 "longer than 64"}));

TEST(SlotType, NamesRoundTrip) {
  for (SlotType type : {SlotType::Count, SlotType::Bytes, SlotType::Unique, SlotType::Unified, SlotType::Fraction}) {
    auto parsed = parseSlotType(slotTypeName(type));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, type);
  }
  auto bad = parseSlotType("float");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("'float'"), std::string::npos);
}

TEST(SlotTypeTable, RefusesAConflictingType) {
  SlotTypeTable table{{SlotName::of("cpu"), SlotType::Count}};
  EXPECT_TRUE(table.add(SlotName::of("cpu"), SlotType::Count).ok());
  auto conflict = table.add(SlotName::of("cpu"), SlotType::Bytes);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code, ErrorCode::Conflict);
  EXPECT_NE(conflict.error().message.find("already known as count"), std::string::npos);
  ASSERT_NE(table.find("cpu"), nullptr);
  EXPECT_EQ(*table.find("cpu"), SlotType::Count);
  EXPECT_EQ(table.find("mem"), nullptr);
  EXPECT_EQ(table.size(), 1u);
}

}  // namespace
}  // namespace bai
