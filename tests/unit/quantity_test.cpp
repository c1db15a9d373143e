#include "../support/rejected_text.hpp"

#include <bai/slots.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace bai {
namespace {

Quantity q(std::string_view text) {
  auto parsed = Quantity::parse(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? *parsed : Quantity();
}

TEST(Quantity, ParsesAndPrintsExactly) {
  EXPECT_EQ(q("0.5").toString(), "0.5");
  EXPECT_EQ(q("13.5").toString(), "13.5");
  EXPECT_EQ(q("13.50").toString(), "13.5");
  EXPECT_EQ(q("4").toString(), "4");
  EXPECT_EQ(q("-2.25").toString(), "-2.25");
  EXPECT_EQ(q(".5").toString(), "0.5");
  EXPECT_EQ(q("0.000001").toString(), "0.000001");
  EXPECT_EQ(q("1e3").toString(), "1000");
  EXPECT_EQ(q("2.5E-1").toString(), "0.25");
  EXPECT_EQ(q("1.0000000").toString(), "1");
  EXPECT_EQ(q("0").toString(), "0");
  EXPECT_EQ(q("-0").toString(), "0");
  EXPECT_EQ(q("007").toString(), "7");
}

TEST(Quantity, Infinity) {
  EXPECT_EQ(q("Infinity").toString(), "Infinity");
  EXPECT_EQ(q("inf"), Quantity::infinity());
  EXPECT_EQ(q("-Infinity"), Quantity::negativeInfinity());
  EXPECT_EQ(Quantity::negativeInfinity().toString(), "-Infinity");
  EXPECT_TRUE(Quantity::infinity().isInfinite());
  EXPECT_GT(Quantity::infinity(), Quantity(std::int64_t{1} << 62));
  EXPECT_EQ(Quantity::infinity() + Quantity(5), Quantity::infinity());
  EXPECT_EQ(Quantity::infinity() - Quantity(5), Quantity::infinity());
  EXPECT_THROW((void)(Quantity::infinity() - Quantity::infinity()), std::domain_error);
}

TEST(Quantity, FromIntegers) {
  EXPECT_EQ(Quantity(3).toString(), "3");
  EXPECT_EQ(Quantity(-3).toString(), "-3");
  EXPECT_EQ(Quantity(INT64_MAX).toString(), "9223372036854775807");
  EXPECT_EQ(Quantity(INT64_MIN).toString(), "-9223372036854775808");
}

TEST(Quantity, DecimalArithmeticIsExact) {
  EXPECT_EQ(q("0.1") + q("0.2"), q("0.3"));
  EXPECT_EQ(q("1") - q("0.9"), q("0.1"));
  Quantity sum;
  for (int i = 0; i < 1000; ++i) sum += q("0.001");
  EXPECT_EQ(sum, Quantity(1));
  EXPECT_EQ((-q("0.5")).toString(), "-0.5");
}

TEST(Quantity, FromDoubleOnlyWhenExact) {
  EXPECT_EQ(Quantity::fromDouble(0.1).value(), q("0.1"));
  EXPECT_EQ(Quantity::fromDouble(-2.5).value(), q("-2.5"));
  EXPECT_EQ(Quantity::fromDouble(1e6).value(), Quantity(1000000));
  EXPECT_NE(Quantity::fromDouble(1e-7).error().message.find("6 fractional digits"), std::string::npos);
  EXPECT_NE(Quantity::fromDouble(1e300).error().message.find("send it as a string"), std::string::npos);
  EXPECT_NE(Quantity::fromDouble(9007199254740992.0).error().message.find("too large"), std::string::npos);
  EXPECT_NE(Quantity::fromDouble(std::nan("")).error().message.find("not a finite"), std::string::npos);
  EXPECT_FALSE(Quantity::fromDouble(HUGE_VAL).ok());
}

TEST(Quantity, Ordering) {
  EXPECT_LT(q("0.5"), q("0.51"));
  EXPECT_LT(q("-1"), q("0"));
  EXPECT_EQ(q("2.0"), Quantity(2));
  EXPECT_TRUE(q("2").isInteger());
  EXPECT_FALSE(q("2.5").isInteger());
  EXPECT_EQ(q("2.5").wholeUnits(), 2);
  EXPECT_EQ(q("-2.5").wholeUnits(), -2);
}

// 100,000 nodes of 2^63 - 1 bytes each (about 2^80 in total, well past the 2^60 of a
// real cluster) add and subtract back exactly.
TEST(Quantity, ClusterWideByteSumsDoNotOverflow) {
  const Quantity node = Quantity(INT64_MAX);
  Quantity total;
  for (int i = 0; i < 100'000; ++i) total += node;
  EXPECT_EQ(total.toString(), "922337203685477580700000");
  EXPECT_GT(total, node);
  for (int i = 0; i < 100'000; ++i) total -= node;
  EXPECT_EQ(total, Quantity());
}

TEST(Quantity, RatioFloorRoundsDownToSixDigits) {
  EXPECT_EQ(Quantity::ratioFloor(1, 3).toString(), "0.333333");
  EXPECT_EQ(Quantity::ratioFloor(2, 3).toString(), "0.666666");
  EXPECT_EQ(Quantity::ratioFloor(80, 8), Quantity(10));
  EXPECT_EQ(Quantity::ratioFloor(0, 7), Quantity());
  EXPECT_EQ(Quantity::ratioFloor(-1, 3).toString(), "-0.333334");  // floor, not truncation
  EXPECT_EQ(Quantity::ratioFloor(1, -3).toString(), "-0.333334");
  // 40 GiB of memory in shares of 3 GiB.
  EXPECT_EQ(Quantity::ratioFloor(__int128{40} << 30, __int128{3} << 30).toString(), "13.333333");
  EXPECT_EQ(Quantity::ratioFloor(UINT64_MAX, 1).toString(), "18446744073709551615");
  EXPECT_THROW((void)Quantity::ratioFloor(1, 0), std::domain_error);
  EXPECT_THROW((void)Quantity::ratioFloor(static_cast<__int128>(1) << 120, 1), std::overflow_error);
}

TEST(Quantity, TimesFloorGivesWholeUnits) {
  EXPECT_EQ(q("0.5").timesFloor(std::int64_t{1} << 31), std::int64_t{1} << 30);
  EXPECT_EQ(q("0.333333").timesFloor(3), 0);
  EXPECT_EQ(q("1.5").timesFloor(3), 4);
  EXPECT_EQ(q("0.25").timesFloor(1'000'000'000), 250'000'000);
  EXPECT_EQ(Quantity(7).timesFloor(0), 0);
  EXPECT_EQ(q("-0.5").timesFloor(3), -2);  // floor, not truncation
  EXPECT_EQ(q("1.000001").timesFloor(UINT64_MAX), static_cast<__int128>(UINT64_MAX) + UINT64_MAX / 1'000'000);
  EXPECT_THROW((void)Quantity::infinity().timesFloor(1), std::domain_error);
  EXPECT_THROW((void)Quantity(INT64_MAX).timesFloor(static_cast<__int128>(1) << 100), std::overflow_error);
}

TEST(Quantity, LeavingTheRangeThrows) {
  const Quantity huge = Quantity::fromRaw((static_cast<__int128>(1) << 125) + 1);
  EXPECT_THROW((void)(huge + huge), std::overflow_error);
}

using BadQuantity = test::RejectedText;

class QuantityRejects : public testing::TestWithParam<BadQuantity> {};

TEST_P(QuantityRejects, WithAClearError) {
  test::expectRejected(GetParam(), Quantity::parse, [](const Quantity& quantity) { return quantity.toString(); });
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, QuantityRejects,
    testing::Values(BadQuantity{"", ErrorCode::InvalidArgument, "empty"},
                    BadQuantity{"NaN", ErrorCode::InvalidArgument, "not a number"},
                    BadQuantity{"-nan", ErrorCode::InvalidArgument, "not a number"},
                    BadQuantity{"abc", ErrorCode::InvalidArgument, "not a decimal"},
                    BadQuantity{"1.2.3", ErrorCode::InvalidArgument, "not a decimal"},
                    BadQuantity{"1.", ErrorCode::InvalidArgument, "not a decimal"},
                    BadQuantity{".", ErrorCode::InvalidArgument, "not a decimal"},
                    BadQuantity{"+", ErrorCode::InvalidArgument, "not a decimal"},
                    BadQuantity{" 1", ErrorCode::InvalidArgument, "not a decimal"},
                    BadQuantity{"1 ", ErrorCode::InvalidArgument, "not a decimal"},
                    BadQuantity{"1e", ErrorCode::InvalidArgument, "exponent"},
                    BadQuantity{"0.0000001", ErrorCode::InvalidArgument, "6 fractional digits"},
                    BadQuantity{"1e-7", ErrorCode::InvalidArgument, "6 fractional digits"},
                    BadQuantity{"1e40", ErrorCode::OutOfRange, "too large"},
                    BadQuantity{"1234567890123456789012345678901234567890", ErrorCode::OutOfRange, "too large"}));

}  // namespace
}  // namespace bai

namespace bai {
namespace {

TEST(Quantity, ToDoubleIsTheNearestDoubleForRanking) {
  EXPECT_EQ(Quantity::parse("0.5")->toDouble(), 0.5);
  EXPECT_EQ(Quantity::parse("-2.25")->toDouble(), -2.25);
  EXPECT_EQ(Quantity::parse("1152921504606846976")->toDouble(), 1152921504606846976.0);
  EXPECT_EQ(Quantity::infinity().toDouble(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(Quantity::negativeInfinity().toDouble(), -std::numeric_limits<double>::infinity());
  EXPECT_LT(Quantity::parse("0.000001")->toDouble(), Quantity::parse("0.000002")->toDouble());
}

}  // namespace
}  // namespace bai
