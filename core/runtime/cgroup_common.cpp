#include "runtime/cgroup_common.hpp"

#include "cpu_list.hpp"

#include <algorithm>
#include <cctype>
#include <csignal>
#include <iterator>
#include <limits>
#include <sstream>
#include <thread>

namespace bai::core {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxSessionIdLength = 128;

std::vector<pid_t> parsePids(const std::string& text) {
  std::vector<pid_t> pids;
  std::istringstream lines(text);
  for (pid_t pid = 0; lines >> pid;) pids.push_back(pid);
  return pids;
}

Result<void> killMembers(CgroupFs& cgroupFs, const fs::path& dir) {
  if (cgroupFs.exists(dir / "cgroup.kill")) return cgroupFs.write(dir / "cgroup.kill", "1");
  Result<std::string> procs = cgroupFs.read(dir / "cgroup.procs");
  if (!procs.ok()) return Failure{procs.error()};
  for (pid_t pid : parsePids(*procs)) ::kill(pid, SIGKILL);
  return {};
}

}  // namespace

Result<void> checkSessionId(const std::string& sessionId) {
  bool safe = !sessionId.empty() && sessionId.size() <= kMaxSessionIdLength &&
              std::all_of(sessionId.begin(), sessionId.end(), [](unsigned char c) {
                return std::isalnum(c) || c == '-' || c == '_' || c == '.';
              });
  if (!safe) {
    return fail(ErrorCode::InvalidArgument,
                "session id '" + sessionId + "' cannot name a cgroup (letters, digits, '-', '_', '.'; at most 128)");
  }
  return {};
}

std::string sessionCgroupName(const std::string& sessionId) { return "bai-" + sessionId; }

std::string trimSpace(const std::string& text) {
  std::size_t start = text.find_first_not_of(" \t\n");
  if (start == std::string::npos) return "";
  return text.substr(start, text.find_last_not_of(" \t\n") + 1 - start);
}

std::string formatCpuList(std::vector<int> numbers) {
  std::sort(numbers.begin(), numbers.end());
  numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
  return internal::formatCpuList(std::vector<unsigned>(numbers.begin(), numbers.end()));
}

bool listsWord(const std::string& text, const std::string& word) {
  std::istringstream words(text);
  return std::find(std::istream_iterator<std::string>(words), std::istream_iterator<std::string>(), word) !=
         std::istream_iterator<std::string>();
}

Result<void> killAndRemove(CgroupFs& cgroupFs, const fs::path& dir, std::chrono::steady_clock::time_point deadline) {
  if (!cgroupFs.exists(dir)) return {};
  for (const fs::path& child : cgroupFs.subdirectories(dir)) {
    if (Result<void> removed = killAndRemove(cgroupFs, child, deadline); !removed.ok()) return removed;
  }
  std::chrono::milliseconds pause{1};
  for (;;) {
    if (Result<void> killed = killMembers(cgroupFs, dir); !killed.ok()) return killed;
    Result<void> removed = cgroupFs.removeDir(dir);
    if (removed.ok() || removed.error().code != ErrorCode::Conflict) return removed;
    if (std::chrono::steady_clock::now() >= deadline) {
      return fail(ErrorCode::Internal, "cgroup " + dir.string() + " still holds processes: " + removed.error().message);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(32));
  }
}

void removeQuietly(CgroupFs& cgroupFs, const std::vector<fs::path>& dirs) {
  for (const fs::path& dir : dirs) (void)cgroupFs.removeDir(dir);
}

fs::path firstExisting(const CgroupFs& cgroupFs, fs::path dir) {
  while (!cgroupFs.exists(dir) && dir.has_relative_path()) dir = dir.parent_path();
  return dir;
}

}  // namespace bai::core

namespace bai::core {

Result<std::string> cfsQuotaMicros(std::uint64_t cpuMillis) {
  constexpr std::uint64_t kMicrosPerMilliCpu = kCpuPeriodMicros / 1000;
  if (cpuMillis < kMinCpuMillis || cpuMillis > std::numeric_limits<std::uint64_t>::max() / kMicrosPerMilliCpu) {
    return fail(ErrorCode::InvalidArgument, "cpu quota of " + std::to_string(cpuMillis) +
                                                " thousandths of a CPU: the kernel takes 0.01 CPUs (10) or more");
  }
  return std::to_string(cpuMillis * kMicrosPerMilliCpu);
}

}  // namespace bai::core
