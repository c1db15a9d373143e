#include "../support/rejected_text.hpp"

#include <bai/slots.hpp>

#include <gtest/gtest.h>

namespace bai {
namespace {

constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

std::uint64_t bytes(std::string_view text) {
  auto parsed = BinarySize::parse(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? parsed->bytes() : 0;
}

TEST(BinarySize, SuffixSpellingsAgree) {
  for (const char* text : {"4g", "4G", "4GiB", "4gb", "4GB", "4gib", "4Gb"}) {
    EXPECT_EQ(bytes(text), 4 * kGiB) << text;
  }
}

TEST(BinarySize, UnitsAndFractions) {
  EXPECT_EQ(bytes("1.5g"), 3 * kGiB / 2);
  EXPECT_EQ(bytes("512m"), 512ull << 20);
  EXPECT_EQ(bytes("1k"), 1024u);
  EXPECT_EQ(bytes("0.5k"), 512u);
  EXPECT_EQ(bytes("2t"), 2ull << 40);
  EXPECT_EQ(bytes("1p"), 1ull << 50);
  EXPECT_EQ(bytes("8e"), 1ull << 63);
  EXPECT_EQ(bytes("1048576"), 1048576u);
  EXPECT_EQ(bytes("100b"), 100u);
  EXPECT_EQ(bytes("0"), 0u);
  EXPECT_EQ(bytes("1.0"), 1u);
  EXPECT_EQ(bytes("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(bytes("15.5e"), 31ull << 59);
}

TEST(BinarySize, FormatsTheShortestForm) {
  EXPECT_EQ(BinarySize(4 * kGiB).toString(), "4g");
  EXPECT_EQ(BinarySize(3 * kGiB / 2).toString(), "1.5g");
  EXPECT_EQ(BinarySize(512ull << 20).toString(), "512m");
  EXPECT_EQ(BinarySize(1000).toString(), "1000");
  EXPECT_EQ(BinarySize(1536).toString(), "1536");
  EXPECT_EQ(BinarySize(1536ull << 10).toString(), "1.5m");
  EXPECT_EQ(BinarySize(0).toString(), "0");
  EXPECT_EQ(BinarySize(1ull << 63).toString(), "8e");
  EXPECT_EQ(BinarySize(1ull << 40).toString(), "1t");
}

TEST(BinarySize, FormatRoundTrips) {
  for (std::uint64_t value : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1023}, std::uint64_t{1025},
                              std::uint64_t{3} << 29, std::uint64_t{123456789}, UINT64_MAX, kGiB + 1}) {
    auto parsed = BinarySize::parse(BinarySize(value).toString());
    ASSERT_TRUE(parsed.ok()) << BinarySize(value).toString();
    EXPECT_EQ(parsed->bytes(), value) << BinarySize(value).toString();
  }
}

TEST(BinarySize, QuantityConversions) {
  EXPECT_EQ(BinarySize(4 * kGiB).toQuantity(), Quantity(static_cast<std::int64_t>(4 * kGiB)));
  EXPECT_EQ(BinarySize(UINT64_MAX).toQuantity().toString(), "18446744073709551615");
  EXPECT_EQ(BinarySize::fromQuantity(Quantity(4096))->bytes(), 4096u);
  EXPECT_FALSE(BinarySize::fromQuantity(Quantity::parse("1.5").value()).ok());
  EXPECT_FALSE(BinarySize::fromQuantity(Quantity(-1)).ok());
  EXPECT_FALSE(BinarySize::fromQuantity(Quantity::infinity()).ok());
}

using BadSize = test::RejectedText;

class BinarySizeRejects : public testing::TestWithParam<BadSize> {};

TEST_P(BinarySizeRejects, WithAClearError) {
  test::expectRejected(GetParam(), BinarySize::parse, [](const BinarySize& size) { return size.bytes(); });
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, BinarySizeRejects,
    testing::Values(BadSize{"1.5", ErrorCode::InvalidArgument, "whole number of bytes"},
                    BadSize{"0.1k", ErrorCode::InvalidArgument, "whole number of bytes"},
                    BadSize{"-1g", ErrorCode::InvalidArgument, "negative"},
                    BadSize{"-0", ErrorCode::InvalidArgument, "negative"},
                    BadSize{"NaN", ErrorCode::InvalidArgument, "not a number"},
                    BadSize{"", ErrorCode::InvalidArgument, "empty"},
                    BadSize{"4x", ErrorCode::InvalidArgument, "unknown unit 'x'"},
                    BadSize{"4gig", ErrorCode::InvalidArgument, "unknown unit"},
                    BadSize{"4 g", ErrorCode::InvalidArgument, "unknown unit"},
                    BadSize{"g", ErrorCode::InvalidArgument, "expected a number"},
                    BadSize{"1.g", ErrorCode::InvalidArgument, "digits after"},
                    BadSize{"16e", ErrorCode::OutOfRange, "2^64-1"},
                    BadSize{"18446744073709551616", ErrorCode::OutOfRange, "2^64-1"},
                    BadSize{"99999999999999999999999", ErrorCode::OutOfRange, "too large"},
                    BadSize{"17179869184g", ErrorCode::OutOfRange, "2^64-1"}));

}  // namespace
}  // namespace bai
