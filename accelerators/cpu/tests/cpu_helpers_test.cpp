// The cpu plugin's pure helpers, compiled into the test: JSON quantities, cpuset lists, /proc parsers.
#include "cpu_list.hpp"
#include "json_quantity.hpp"
#include "proc_stats.hpp"

#include <gtest/gtest.h>

namespace bai::cpu {
namespace {

using nlohmann::json;

std::optional<std::string> fromJson(const json& value) {
  const std::optional<Quantity> quantity = quantityFromJson(value);
  return quantity ? std::optional(quantity->toString()) : std::nullopt;
}

TEST(CpuJsonQuantity, TakesDecimalText) {
  EXPECT_EQ(fromJson("3"), "3");
  EXPECT_EQ(fromJson("1.500000"), "1.5");
  EXPECT_EQ(fromJson("0.000001"), "0.000001");
  EXPECT_EQ(fromJson("9999999999999999999.999999"), "9999999999999999999.999999");  // beyond 2^63
  for (const char* text : {"", "-1", "-0.5", "1.0000001", "abc", " 1", "Infinity", "NaN"}) {
    EXPECT_EQ(fromJson(text), std::nullopt) << text;
  }
}

TEST(CpuJsonQuantity, AcceptsJsonNumbersOnlyWhenExact) {
  EXPECT_EQ(fromJson(json(2)), "2");
  EXPECT_EQ(fromJson(json::parse("2")), "2");  // parsed: unsigned
  EXPECT_EQ(fromJson(json(UINT64_MAX)), "18446744073709551615");
  EXPECT_EQ(fromJson(json(1.5)), "1.5");
  EXPECT_EQ(fromJson(json(0.1)), "0.1");
  EXPECT_EQ(fromJson(json(1e6)), "1000000");
  EXPECT_EQ(fromJson(json(-1)), std::nullopt);
  EXPECT_EQ(fromJson(json(-1.5)), std::nullopt);
  EXPECT_EQ(fromJson(json(1e-7)), std::nullopt);
  EXPECT_EQ(fromJson(json(1e20)), std::nullopt);  // past 2^53: send it as text
  EXPECT_EQ(fromJson(json(true)), std::nullopt);
  EXPECT_EQ(fromJson(json::object()), std::nullopt);
}

using internal::formatCpuList;
using internal::parseCpuList;

TEST(CpuList, FormatsRunsAsRanges) {
  EXPECT_EQ(formatCpuList({}), "");
  EXPECT_EQ(formatCpuList({0}), "0");
  EXPECT_EQ(formatCpuList({0, 3}), "0,3");
  EXPECT_EQ(formatCpuList({0, 1}), "0-1");
  EXPECT_EQ(formatCpuList({0, 1, 2, 3, 8}), "0-3,8");
  EXPECT_EQ(formatCpuList({1, 3, 4, 5, 7, 9, 10}), "1,3-5,7,9-10");
}

TEST(CpuList, ParsesWhatItFormats) {
  const std::vector<unsigned> ids{1, 3, 4, 5, 7, 9, 10};
  EXPECT_EQ(parseCpuList(formatCpuList(ids)), ids);
  EXPECT_EQ(parseCpuList("8,0-3,2"), (std::vector<unsigned>{0, 1, 2, 3, 8})) << "sorted, without duplicates";
  for (const char* bad : {"", ",", "1,", ",1", "3-1", "1-", "-1", "a", "1 ,2", "123456"}) {
    EXPECT_EQ(parseCpuList(bad), std::nullopt) << bad;
  }
}

constexpr const char* kProcStat =
    "cpu  74583 0 7800 267397 1320 0 87 129 0 0\n"
    "cpu0 31374 0 3292 140804 70 0 16 68 0 0\n"
    "cpu1 43209 5 4508 126592 1250 0 71 60 100 0\n"
    "cpu17 10 0 10 80\n"
    "cpu 1 2 3 4\n"
    "intr 1 2 3\n"
    "cpufreq 1 2\n";

TEST(CpuProcStat, ParsesPerCpuLinesOnly) {
  const auto perCpu = parsePerCpuTimes(kProcStat);
  ASSERT_EQ(perCpu.size(), 3u);
  EXPECT_EQ(perCpu.at(0).total, 31374u + 3292 + 140804 + 70 + 16 + 68);
  EXPECT_EQ(perCpu.at(0).busy, 31374u + 3292 + 16 + 68);
  // guest time (100) is already part of user time: not counted twice.
  EXPECT_EQ(perCpu.at(1).total, 43209u + 5 + 4508 + 126592 + 1250 + 71 + 60);
  EXPECT_EQ(perCpu.at(1).busy, 43209u + 5 + 4508 + 71 + 60);
  EXPECT_EQ(perCpu.at(17).total, 100u);  // an old kernel's four fields
  EXPECT_EQ(perCpu.at(17).busy, 20u);
}

TEST(CpuProcStat, BusyPercentIsExactOverTheInterval) {
  EXPECT_EQ(busyPercent({0, 0}, {25, 100}), "25");
  EXPECT_EQ(busyPercent({25, 100}, {26, 103}), "33.333333");
  EXPECT_EQ(busyPercent({25, 100}, {25, 100}), "0");
  EXPECT_EQ(busyPercent({50, 200}, {10, 40}), "25");  // counters went back: since zero
}

TEST(CpuProcMeminfo, UsedIsTotalMinusAvailable) {
  const auto usage = parseMemoryUsage(
      "MemTotal:       24684096 kB\nMemFree:        20000000 kB\nMemAvailable:   24330832 kB\n");
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->totalBytes, 24684096ull * 1024);
  EXPECT_EQ(usage->usedBytes, (24684096ull - 24330832) * 1024);
  EXPECT_FALSE(parseMemoryUsage("MemTotal: 10 kB\n").has_value());
  EXPECT_FALSE(parseMemoryUsage("MemTotal: 10 kB\nMemAvailable: 11 kB\n").has_value());
}

TEST(CpuProcFiles, ReadsProcFilesWhoseSizeIsZero) {
  const auto stat = readProcFile("/proc/stat");
  ASSERT_TRUE(stat.has_value());
  EXPECT_FALSE(parsePerCpuTimes(*stat).empty());
  EXPECT_FALSE(readProcFile("/proc/no-such-file").has_value());
}

}  // namespace
}  // namespace bai::cpu
