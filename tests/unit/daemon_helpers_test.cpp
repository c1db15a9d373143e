// daemon-common's small helpers: the clock, the ready file and the bearer token check.
#include "bearer_token.hpp"
#include "clock.hpp"
#include "ready_file.hpp"
#include "runtime/atomic_file.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

namespace bai {
namespace {

std::int64_t systemClockMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

TEST(NowMillis, IsTheWallClockInMillisecondsSinceTheEpoch) {
  const std::int64_t before = systemClockMillis();
  const std::int64_t now = nowMillis();
  const std::int64_t after = systemClockMillis();
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
}

TEST(ReadyFile, HoldsTheAddressAndALineEnd) {
  test::TempDir dir;
  const auto file = dir.path() / "ready";
  ASSERT_TRUE(writeReadyFile(file, "127.0.0.1:8081").ok());
  EXPECT_EQ(core::readWholeFile(file).value(), "127.0.0.1:8081\n");
}

TEST(ReadyFile, ReplacesAnOldFileAndLeavesNoTempFileBehind) {
  test::TempDir dir;
  const auto file = dir.path() / "ready";
  ASSERT_TRUE(writeReadyFile(file, "127.0.0.1:1").ok());
  ASSERT_TRUE(writeReadyFile(file, "127.0.0.1:2").ok());
  EXPECT_EQ(core::readWholeFile(file).value(), "127.0.0.1:2\n");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()), 1);
}

TEST(ReadyFile, FailsWithTheReasonWhenTheFolderIsMissing) {
  test::TempDir dir;
  auto written = writeReadyFile(dir.path() / "missing" / "ready", "127.0.0.1:8081");
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.error().message.find("missing"), std::string::npos) << written.error().message;
}

TEST(BearerToken, MatchesOnlyTheExactHeader) {
  EXPECT_TRUE(bearerTokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_FALSE(bearerTokenMatches("Bearer s3creT", "s3cret"));
  EXPECT_FALSE(bearerTokenMatches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(bearerTokenMatches("Bearer s3cret ", "s3cret"));
  EXPECT_FALSE(bearerTokenMatches("bearer s3cret", "s3cret"));
  EXPECT_FALSE(bearerTokenMatches("s3cret", "s3cret"));
  EXPECT_FALSE(bearerTokenMatches("", "s3cret"));
}

}  // namespace
}  // namespace bai
