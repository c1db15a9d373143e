// The bai CLI's pieces for virtual folders: --mount specs and how transfers are shown.
#include "mount_spec.hpp"
#include "transfer_progress.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace bai::cli {
namespace {

TEST(MountSpec, ANameAloneIsARwMountAtTheDefaultTarget) {
  auto mount = parseMountSpec("data");
  ASSERT_TRUE(mount.ok()) << mount.error().message;
  EXPECT_EQ(mount->folder, "data");
  EXPECT_EQ(mount->target, "");
  EXPECT_FALSE(mount->readOnly);
}

TEST(MountSpec, TargetAndReadOnlyAreRead) {
  auto both = parseMountSpec("data:/home/work/in:ro");
  ASSERT_TRUE(both.ok()) << both.error().message;
  EXPECT_EQ(both->folder, "data");
  EXPECT_EQ(both->target, "/home/work/in");
  EXPECT_TRUE(both->readOnly);
  auto readOnly = parseMountSpec("data:ro");
  ASSERT_TRUE(readOnly.ok());
  EXPECT_EQ(readOnly->target, "");
  EXPECT_TRUE(readOnly->readOnly);
  auto target = parseMountSpec("data:/home/work/x");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->target, "/home/work/x");
  EXPECT_FALSE(target->readOnly);
}

TEST(MountSpec, ErrorsNameTheBadSpec) {
  for (const char* bad : {"", ":/home/work/x", "data:home/work", "data:ro:/home/work/x", "data:/a:/b", "data:", "data:rx",
                          "data:ro:ro"}) {
    auto mount = parseMountSpec(bad);
    ASSERT_FALSE(mount.ok()) << bad;
    EXPECT_NE(mount.error().message.find(std::string("'") + bad + "'"), std::string::npos) << mount.error().message;
  }
}

TEST(TransferProgressText, BytesRatesAndEtasReadAsPeopleWriteThem) {
  EXPECT_EQ(formatBytes(0), "0 B");
  EXPECT_EQ(formatBytes(1023), "1023 B");
  EXPECT_EQ(formatBytes(1536), "1.50 KiB");
  EXPECT_EQ(formatBytes(12u << 20), "12.0 MiB");
  EXPECT_EQ(formatBytes(300ull << 30), "300 GiB");
  EXPECT_EQ(formatRate(0), "0 B/s");
  EXPECT_EQ(formatRate(5.0 * (1 << 20)), "5.00 MiB/s");
  EXPECT_EQ(formatEta(-1), "--");
  EXPECT_EQ(formatEta(7.4), "7s");
  EXPECT_EQ(formatEta(65), "1m05s");
  EXPECT_EQ(formatEta(3 * 3600 + 4 * 60), "3h04m");
  EXPECT_EQ(transferSummaryLine(100u << 20, 4.0, 3), "100 MiB in 4.0 s, 25.0 MiB/s (3 files)");
  EXPECT_EQ(transferSummaryLine(5, 0, 1), "5 B in 0.0 s, 0.0 MiB/s (1 file)");
}

TEST(TransferProgressText, TheBarShowsShareRateEtaAndFiles) {
  const client::TransferProgress half{50u << 20, 100u << 20, 1, 4};
  EXPECT_EQ(ProgressDisplay::barText(half, 10.0), " 50% [##########..........] 50.0 MiB/100 MiB 5.00 MiB/s ETA 10s 1/4 files");
  const client::TransferProgress start{0, 1000, 0, 1};
  EXPECT_EQ(ProgressDisplay::barText(start, 0), "  0% [....................] 0 B/1000 B 0 B/s ETA -- 0/1 files");
}

TEST(TransferProgressText, ALiveBarIsRedrawnAtMostTenTimesASecond) {
  std::ostringstream out;
  const auto start = ProgressDisplay::Clock::now();
  ProgressDisplay display(out, true, start);
  for (int i = 0; i < 50; ++i) display.update({static_cast<std::uint64_t>(i), 100, 0, 1}, start + std::chrono::milliseconds(i * 10));
  std::size_t draws = 0;
  for (std::size_t at = out.str().find('\r'); at != std::string::npos; at = out.str().find('\r', at + 1)) ++draws;
  EXPECT_EQ(draws, 5u) << "0.5 s of updates every 10 ms";
}

TEST(TransferProgressText, NotATerminalGetsOnlyTheSummary) {
  std::ostringstream out;
  const auto start = ProgressDisplay::Clock::now();
  ProgressDisplay display(out, false, start);
  display.update({10, 100, 0, 1}, start + std::chrono::seconds(1));
  client::TransferSummary summary;
  summary.bytes = 2u << 20;
  summary.files = 2;
  summary.skipped = {"top/link (a symbolic link: not followed)"};
  display.finish(summary, start + std::chrono::seconds(2));
  EXPECT_EQ(out.str(), "2.00 MiB in 2.0 s, 1.0 MiB/s (2 files)\nskipped: top/link (a symbolic link: not followed)\n");
}

}  // namespace
}  // namespace bai::cli
