// What the cgroup v1 and v2 back ends share: naming a session's cgroup, the kernel's list
// format, killing and removing a cgroup, and undoing a half-done prepare.
#pragma once

#include "bai/result.hpp"
#include "runtime/cgroup_fs.hpp"
#include "runtime/cgroup_limits.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace bai::core {

// Killed processes leave their cgroup within milliseconds; past this, something is stuck.
inline constexpr std::chrono::seconds kCgroupRemoveDeadline{5};

// A back end and what this kernel lacks for it, each gap with its consequence
// ("no swap accounting: swap not limited"); detection logs both in one line.
struct LimitsBackendChoice {
  std::unique_ptr<LimitsBackend> backend;
  std::vector<std::string> gaps;
};

// InvalidArgument unless the id can name a cgroup (letters, digits, '-', '_', '.').
Result<void> checkSessionId(const std::string& sessionId);
std::string sessionCgroupName(const std::string& sessionId);

std::string trimSpace(const std::string& text);
// The kernel's list format: "0-3,6".
std::string formatCpuList(std::vector<int> numbers);
bool listsWord(const std::string& text, const std::string& word);

// Child cgroups first (a session running as root may have made some), then `dir`, killing
// its members until the kernel lets it go. A missing dir is fine.
Result<void> killAndRemove(CgroupFs& cgroupFs, const std::filesystem::path& dir,
                           std::chrono::steady_clock::time_point deadline);

// The CFS quota in microseconds per kCpuPeriodMicros for `cpuMillis` thousandths of a
// CPU; InvalidArgument under kMinCpuMillis, which the kernel refuses.
Result<std::string> cfsQuotaMicros(std::uint64_t cpuMillis);

// Keeps a failed prepare from leaving half-configured cgroups behind.
void removeQuietly(CgroupFs& cgroupFs, const std::vector<std::filesystem::path>& dirs);

// The dir we will write in: `dir` when it exists, else its first existing ancestor.
std::filesystem::path firstExisting(const CgroupFs& cgroupFs, std::filesystem::path dir);

}  // namespace bai::core
