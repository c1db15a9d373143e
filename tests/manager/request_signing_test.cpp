// libbai's request signing: known-answer vectors, so that clients in other languages can
// check their implementation against the same numbers.
#include <bai/request_signing.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>

namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;
namespace auth = bai::auth;

const auth::SigningKey kTestKey{"AKBAITESTKEY0000001", "wJalrXUtnFEMI_K7MDENG-bPxRfiCYEXAMPLEKEY"};
constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kNonce = "00112233445566778899aabbccddeeff";

system_clock::time_point at(const char* rfc3339) { return auth::parseRfc3339Utc(rfc3339).value(); }

TEST(Sha256Hex, KnownAnswers) {
  EXPECT_EQ(auth::sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(auth::sha256Hex(""), kEmptySha256);
}

TEST(HmacSha256Hex, Rfc4231TestCase2) {
  EXPECT_EQ(auth::hmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256Hex, EmptyKeyAndData) {
  EXPECT_EQ(auth::hmacSha256Hex("", ""), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(StringToSign, FieldsJoinedByNewlineMethodUpperCased) {
  EXPECT_EQ(auth::stringToSign("get", "/v1/sessions?limit=10", "2026-11-28T16:40:00Z", kNonce, kEmptySha256),
            std::string("GET\n/v1/sessions?limit=10\n2026-11-28T16:40:00Z\n") + kNonce + "\n" + kEmptySha256);
}

TEST(StringToSign, PathAndQueryKeptVerbatim) {
  const std::string text = auth::stringToSign("Post", "/v1/a%2Fb?z=1&a=2", "d", "n", "h");
  EXPECT_EQ(text, "POST\n/v1/a%2Fb?z=1&a=2\nd\nn\nh");
}

TEST(Rfc3339, FormatsUtcToTheSecond) {
  EXPECT_EQ(auth::formatRfc3339Utc(system_clock::time_point{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(auth::formatRfc3339Utc(system_clock::time_point{1'795'884'000s + 999ms}), "2026-11-28T16:40:00Z");
}

TEST(Rfc3339, RoundTrips) {
  for (const char* text : {"2026-11-28T16:40:00Z", "2024-02-29T23:59:59Z", "1970-01-01T00:00:00Z",
                           "1969-12-31T23:59:59Z", "2000-01-01T12:00:01Z"}) {
    const auto parsed = auth::parseRfc3339Utc(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.error().message;
    EXPECT_EQ(auth::formatRfc3339Utc(*parsed), text);
  }
  const auto now = system_clock::now();
  EXPECT_EQ(auth::parseRfc3339Utc(auth::formatRfc3339Utc(now)).value(), std::chrono::floor<std::chrono::seconds>(now));
  EXPECT_EQ(at("2026-11-28T16:40:00Z").time_since_epoch(), 1'795'884'000s);
}

TEST(Rfc3339, RefusesGarbage) {
  for (const char* text :
       {"", "garbage", "Z", "2026-11-28", "2026-11-28T16:40:00", "2026-11-28T16:40:00+00:00",
        "2026-11-28T17:40:00+01:00", "2026-11-28T16:40:00z", "2026-11-28t16:40:00Z", "2026-11-28 16:40:00Z",
        "2026-11-28T16:40:00.5Z", "2026-11-28T16:40Z", " 2026-11-28T16:40:00Z", "2026-11-28T16:40:00ZZ",
        "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
        "2026-11-31T00:00:00Z", "2026-11-28T24:00:00Z", "2026-11-28T16:60:00Z", "2026-11-28T16:40:60Z",
        "2026-1a-28T16:40:00Z", "+026-11-28T16:40:00Z", "2026-11-28T16:4-:00Z"}) {
    const auto parsed = auth::parseRfc3339Utc(text);
    ASSERT_FALSE(parsed.ok()) << "accepted '" << text << "'";
    EXPECT_EQ(parsed.error().code, bai::ErrorCode::InvalidArgument);
    EXPECT_NE(parsed.error().message.find("2026-11-28T16:40:00Z"), std::string::npos) << parsed.error().message;
  }
}

// 2^64 ns after now is in the year 2611: in nanoseconds it wrapped back to about now, so
// the verifier once took it for a fresh date.
TEST(Rfc3339, RefusesYearsWhoseTimePointWouldOverflow) {
  const auto now = std::chrono::floor<std::chrono::seconds>(system_clock::now());
  const std::chrono::sys_seconds wrapped{now.time_since_epoch() + 18'446'744'074s};
  const std::chrono::year_month_day date{std::chrono::floor<std::chrono::days>(wrapped)};
  const std::chrono::hh_mm_ss clock{wrapped - std::chrono::floor<std::chrono::days>(wrapped)};
  char text[32];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()));
  ASSERT_EQ(std::string(text).substr(0, 2), "26") << text;
  for (const char* refused : {static_cast<const char*>(text), "2263-01-01T00:00:00Z", "2200-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                              "1899-12-31T23:59:59Z", "0000-01-01T00:00:00Z"}) {
    const auto parsed = auth::parseRfc3339Utc(refused);
    ASSERT_FALSE(parsed.ok()) << "accepted '" << refused << "'";
    EXPECT_NE(parsed.error().message.find("the year must be 1900 to 2199"), std::string::npos) << parsed.error().message;
  }
  EXPECT_TRUE(auth::parseRfc3339Utc("2199-12-31T23:59:59Z").ok());
  EXPECT_TRUE(auth::parseRfc3339Utc("1900-01-01T00:00:00Z").ok());
}

TEST(Rfc3339, SaysWhyAnOffsetIsRefused) {
  const auto parsed = auth::parseRfc3339Utc("2026-11-28T17:40:00+01:00");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("must be Z"), std::string::npos) << parsed.error().message;
}

// Pinned signatures, computed independently with
//   printf '<string to sign>' | openssl dgst -sha256 -hmac '<secret key>'
TEST(SignRequest, KnownAnswerWithoutBody) {
  const auto headers =
      auth::signRequest(kTestKey, "GET", "/v1/sessions?limit=10", "", at("2026-11-28T16:40:00Z"), kNonce);
  const std::map<std::string, std::string> expected{
      {"Authorization",
       "BAI-HMAC-SHA256 Credential=AKBAITESTKEY0000001, "
       "Signature=c131401e4e200bc491459fe344fecb462ffbb4833f0d8754fffa1b29fe378e21"},
      {"X-BAI-Date", "2026-11-28T16:40:00Z"},
      {"X-BAI-Nonce", kNonce},
      {"X-BAI-Content-SHA256", kEmptySha256},
  };
  EXPECT_EQ(headers, expected);
}

TEST(SignRequest, KnownAnswerWithBody) {
  const auto headers = auth::signRequest(kTestKey, "post", "/v1/sessions", R"({"image":"python:3.12"})",
                                         at("2026-11-28T16:40:00Z"), kNonce);
  EXPECT_EQ(headers.at("X-BAI-Content-SHA256"), "cedb55de0d661de0a0c22258cbaa7cedf41c907e87b9710fdf6260f82aa37cd1");
  EXPECT_EQ(headers.at("Authorization"),
            "BAI-HMAC-SHA256 Credential=AKBAITESTKEY0000001, "
            "Signature=9216985d79df0c2bd5a02ec20bf4e83bc633e205f21025cdd4f85ab7e779b3b8");
}

TEST(SignRequest, GeneratesAFreshHexNonceEachTime) {
  std::set<std::string> nonces;
  for (int i = 0; i < 100; ++i) {
    const auto headers = auth::signRequest(kTestKey, "GET", "/v1/sessions", "", system_clock::now());
    ASSERT_EQ(headers.size(), 4u);
    const std::string& nonce = headers.at(std::string(auth::kNonceHeader));
    EXPECT_EQ(nonce.size(), 2 * auth::kNonceBytes);
    EXPECT_EQ(nonce.find_first_not_of("0123456789abcdef"), std::string::npos) << nonce;
    nonces.insert(nonce);
  }
  EXPECT_EQ(nonces.size(), 100u);
}

}  // namespace
