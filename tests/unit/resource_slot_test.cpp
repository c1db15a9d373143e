#include <bai/slots.hpp>

#include <gtest/gtest.h>

namespace bai {
namespace {

Quantity q(std::string_view text) { return Quantity::parse(text).value(); }
SlotName s(std::string_view text) { return SlotName::of(text); }

TEST(ResourceSlot, MissingKeyIsZero) {
  ResourceSlot slots{{s("cpu"), 2}};
  EXPECT_EQ(slots.get("cpu"), Quantity(2));
  EXPECT_EQ(slots.get("mem"), Quantity(0));
  EXPECT_EQ(slots.get(s("cuda.shares")), Quantity(0));
  EXPECT_FALSE(slots.contains("mem"));
}

TEST(ResourceSlot, ArithmeticOverTheUnionOfKeysLeavesOperandsAlone) {
  const ResourceSlot a{{s("cpu"), 2}, {s("mem"), 1024}};
  const ResourceSlot b{{s("cpu"), q("0.5")}, {s("cuda.shares"), q("0.3")}};
  const ResourceSlot aBefore = a, bBefore = b;

  const ResourceSlot sum = a + b;
  EXPECT_EQ(sum.get("cpu"), q("2.5"));
  EXPECT_EQ(sum.get("mem"), Quantity(1024));
  EXPECT_EQ(sum.get("cuda.shares"), q("0.3"));
  EXPECT_EQ(sum.size(), 3u);

  const ResourceSlot diff = a - b;
  EXPECT_EQ(diff.get("cpu"), q("1.5"));
  EXPECT_EQ(diff.get("cuda.shares"), q("-0.3"));

  // Operands untouched, keys included (upstream's sync_keys adds keys to both).
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_FALSE(a.contains("cuda.shares"));
  EXPECT_EQ(a.toJson(), aBefore.toJson());
  EXPECT_EQ(b.toJson(), bBefore.toJson());
}

TEST(ResourceSlot, EqualityTreatsMissingAsZero) {
  EXPECT_EQ((ResourceSlot{{s("cpu"), 0}}), ResourceSlot{});
  EXPECT_EQ((ResourceSlot{{s("cpu"), 1}, {s("mem"), 0}}), (ResourceSlot{{s("cpu"), 1}}));
  EXPECT_NE((ResourceSlot{{s("cpu"), 1}}), (ResourceSlot{{s("mem"), 1}}));
}

TEST(ResourceSlot, PartialOrderPerKey) {
  const ResourceSlot small{{s("cpu"), 1}, {s("mem"), 4}};
  const ResourceSlot big{{s("cpu"), 2}, {s("mem"), 4}, {s("cuda.device"), 1}};
  const ResourceSlot other{{s("cpu"), 4}};

  EXPECT_TRUE(small <= big);
  EXPECT_TRUE(small < big);
  EXPECT_TRUE(big >= small);
  EXPECT_FALSE(big <= small);
  // Neither fits in the other: unordered, so every relational operator is false.
  EXPECT_FALSE(small <= other);
  EXPECT_FALSE(other <= small);
  EXPECT_FALSE(small < other);
  EXPECT_FALSE(small > other);
  EXPECT_TRUE((small <=> other) == std::partial_ordering::unordered);
  EXPECT_TRUE(ResourceSlot{} <= small);
  EXPECT_TRUE(small <= small);
  // A request of a slot the capacity lacks does not fit (missing = 0).
  EXPECT_FALSE((ResourceSlot{{s("acme.device"), 1}}) <= big);
}

TEST(ResourceSlot, JsonRoundTripKeepsExactValues) {
  const ResourceSlot slots{{s("cpu"), q("2.5")},
                           {s("mem"), Quantity(INT64_MAX)},
                           {s("cuda.shares"), q("0.000001")},
                           {s("quota"), Quantity::infinity()}};
  const std::string json = slots.toJson();
  EXPECT_EQ(json, R"({"cpu":"2.5","cuda.shares":"0.000001","mem":"9223372036854775807","quota":"Infinity"})");
  auto back = ResourceSlot::fromJson(json);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->toJson(), json);
  EXPECT_EQ(back->get("cuda.shares"), q("0.000001"));
}

TEST(ResourceSlot, JsonNumbersOnlyWhenExact) {
  auto ok = ResourceSlot::fromJson(R"({"cpu": 2, "cuda.shares": 0.5, "x": 0.1, "mem": 18446744073709551615})");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->get("cpu"), Quantity(2));
  EXPECT_EQ(ok->get("cuda.shares"), q("0.5"));
  EXPECT_EQ(ok->get("x"), q("0.1"));
  EXPECT_EQ(ok->get("mem").toString(), "18446744073709551615");

  auto tooPrecise = ResourceSlot::fromJson(R"({"cpu": 0.1234567})");
  ASSERT_FALSE(tooPrecise.ok());
  EXPECT_NE(tooPrecise.error().message.find("'cpu'"), std::string::npos);
  auto tooBig = ResourceSlot::fromJson(R"({"mem": 1e300})");
  ASSERT_FALSE(tooBig.ok());
  EXPECT_NE(tooBig.error().message.find("as a string"), std::string::npos);
}

TEST(ResourceSlot, JsonErrorsNameTheKey) {
  auto check = [](std::string_view json, std::string_view mentions) {
    auto parsed = ResourceSlot::fromJson(json);
    ASSERT_FALSE(parsed.ok()) << json;
    EXPECT_NE(parsed.error().message.find(mentions), std::string::npos) << parsed.error().message;
  };
  check(R"({"cpu": "two"})", "'cpu'");
  check(R"({"cpu": true})", "'cpu'");
  check(R"({"cpu": null})", "'cpu'");
  check(R"({"Bad Name": "1"})", "invalid slot name 'Bad Name'");
  check(R"(["cpu"])", "expected a JSON object");
  check(R"({"cpu": )", "malformed JSON");
  check(R"({"cpu": 18446744073709551616})", "cpu: the number 18446744073709551616 cannot be held exactly");
  check(R"({"cpu": )" + std::string(150'000, '[') + std::string(150'000, ']') + "}", "nested deeper than 64 levels");
}

class UserInput : public testing::Test {
 protected:
  SlotTypeTable types{{s("cpu"), SlotType::Count},
                      {s("mem"), SlotType::Bytes},
                      {s("cuda.shares"), SlotType::Count},
                      {s("cuda.device:1g.10gb-mig"), SlotType::Unique},
                      {s("shmem"), SlotType::Unified}};

  Result<ResourceSlot> parse(std::vector<std::pair<std::string, std::string>> input) {
    return ResourceSlot::parseUserInput(input, types);
  }
  void expectError(std::vector<std::pair<std::string, std::string>> input, std::string_view mentions) {
    auto parsed = parse(input);
    ASSERT_FALSE(parsed.ok()) << mentions;
    EXPECT_NE(parsed.error().message.find(mentions), std::string::npos) << parsed.error().message;
  }
};

TEST_F(UserInput, ParsesByType) {
  auto parsed = parse({{"cpu", "2"}, {"mem", "4g"}, {"cuda.shares", "0.5"}, {"cuda.device:1g.10gb-mig", "1"}});
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->get("cpu"), Quantity(2));
  EXPECT_EQ(parsed->get("mem"), Quantity(std::int64_t{4} << 30));
  EXPECT_EQ(parsed->get("cuda.shares"), q("0.5"));
  EXPECT_EQ(parsed->get("cuda.device:1g.10gb-mig"), Quantity(1));
}

TEST_F(UserInput, BadInputsNameTheSlot) {
  expectError({{"gpu", "1"}}, "unknown resource slot 'gpu'");
  expectError({{"cpu", "-1"}}, "'cpu' = '-1': negative");
  expectError({{"cpu", "Infinity"}}, "must be finite");
  expectError({{"cpu", "lots"}}, "resource slot 'cpu'");
  expectError({{"mem", "1.5"}}, "resource slot 'mem'");
  expectError({{"mem", "-4g"}}, "negative");
  expectError({{"cuda.device:1g.10gb-mig", "2"}}, "exactly 1");
  expectError({{"shmem", "1g"}}, "unified");
  expectError({{"cpu", "1"}, {"cpu", "2"}}, "given twice");
  expectError({{"CPU", "1"}}, "invalid slot name 'CPU'");
}

}  // namespace
}  // namespace bai
