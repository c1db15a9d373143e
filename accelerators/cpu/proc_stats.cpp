#include "proc_stats.hpp"

#include <bai/slots.hpp>

#include <charconv>
#include <cstdio>
#include <memory>

namespace bai::cpu {
namespace {

// user nice system idle iowait irq softirq steal; guest time is already in user and nice.
constexpr int kCountedFields = 8;
constexpr int kIdleField = 3;
constexpr int kIoWaitField = 4;

std::string_view nextLine(std::string_view& text) {
  const std::size_t end = text.find('\n');
  const std::string_view line = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  return line;
}

// Parses the unsigned number at the start of `text` after spaces and consumes it.
std::optional<std::uint64_t> nextNumber(std::string_view& text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc()) return std::nullopt;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return value;
}

std::optional<CpuTimes> parseCpuFields(std::string_view fields) {
  CpuTimes times;
  std::uint64_t idle = 0;
  for (int field = 0; field < kCountedFields; ++field) {
    const auto value = nextNumber(fields);
    if (!value) break;  // old kernels have fewer fields
    times.total += *value;
    if (field == kIdleField || field == kIoWaitField) idle += *value;
  }
  if (times.total == 0) return std::nullopt;
  times.busy = times.total - idle;
  return times;
}

std::optional<std::uint64_t> meminfoKilobytes(std::string_view line, std::string_view name) {
  if (line.substr(0, name.size()) != name) return std::nullopt;
  line.remove_prefix(name.size());
  return nextNumber(line);
}

}  // namespace

std::unordered_map<unsigned, CpuTimes> parsePerCpuTimes(std::string_view procStat) {
  std::unordered_map<unsigned, CpuTimes> perCpu;
  while (!procStat.empty()) {
    std::string_view line = nextLine(procStat);
    if (line.substr(0, 3) != "cpu") continue;
    line.remove_prefix(3);
    if (line.empty() || line.front() < '0' || line.front() > '9') continue;  // the aggregate "cpu  ..." line
    const auto cpu = nextNumber(line);
    if (!cpu || line.empty() || line.front() != ' ') continue;
    if (const auto times = parseCpuFields(line)) perCpu[static_cast<unsigned>(*cpu)] = *times;
  }
  return perCpu;
}

std::string busyPercent(CpuTimes before, CpuTimes after) {
  if (after.total < before.total || after.busy < before.busy) before = {};
  const std::uint64_t total = after.total - before.total;
  if (total == 0) return "0";
  return Quantity::ratioFloor(__int128{after.busy - before.busy} * 100, total).toString();
}

std::optional<MemoryUsage> parseMemoryUsage(std::string_view procMeminfo) {
  std::optional<std::uint64_t> total;
  std::optional<std::uint64_t> available;
  while (!procMeminfo.empty() && !(total && available)) {
    const std::string_view line = nextLine(procMeminfo);
    if (!total) total = meminfoKilobytes(line, "MemTotal:");
    if (!available) available = meminfoKilobytes(line, "MemAvailable:");
  }
  if (!total || !available || *available > *total) return std::nullopt;
  constexpr std::uint64_t kBytesPerKilobyte = 1024;  // /proc/meminfo's "kB" are KiB
  return MemoryUsage{*total * kBytesPerKilobyte, (*total - *available) * kBytesPerKilobyte};
}

std::optional<std::string> readProcFile(const char* path) {
  struct Closer {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  const std::unique_ptr<std::FILE, Closer> file(std::fopen(path, "re"));
  if (!file) return std::nullopt;
  std::string text;
  char buffer[16384];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, got);
  if (std::ferror(file.get())) return std::nullopt;
  return text;
}

}  // namespace bai::cpu
