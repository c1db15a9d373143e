// Readers of this machine's /proc counters for node_measures. Parsers take the text so
// that tests can feed them fixed samples.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace bai::cpu {

// Jiffies of one CPU since boot: all of them, and those not idle or waiting for I/O.
struct CpuTimes {
  std::uint64_t busy = 0;
  std::uint64_t total = 0;
};

// The "cpuN" lines of /proc/stat, keyed by N (the aggregate "cpu" line is skipped).
std::unordered_map<unsigned, CpuTimes> parsePerCpuTimes(std::string_view procStat);

// Busy share of the jiffies between two samples, in percent: "37.5". A counter that went
// backwards (CPU hot-unplugged and back) restarts from zero.
std::string busyPercent(CpuTimes before, CpuTimes after);

struct MemoryUsage {
  std::uint64_t totalBytes = 0;
  std::uint64_t usedBytes = 0;  // MemTotal - MemAvailable: what cannot be reclaimed
};

std::optional<MemoryUsage> parseMemoryUsage(std::string_view procMeminfo);

// The whole content of a /proc file (their size is reported as 0); nullopt if unreadable.
std::optional<std::string> readProcFile(const char* path);

}  // namespace bai::cpu
