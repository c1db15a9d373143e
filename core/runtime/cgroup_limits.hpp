// Session limits (CPU set, CPU quota, NUMA memory nodes, memory and swap, pids, a device
// fence) behind one interface, with cgroup v2, cgroup v1 and advisory back ends. The
// agent picks one at start with detectLimitsBackend() and prints its one-line reason.
#pragma once

#include "bai/result.hpp"
#include "log.hpp"
#include "runtime/cgroup_fs.hpp"
#include "runtime/device_program_loader.hpp"
#include "runtime/sandbox_spec.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bai::core {

// The least CPU quota the kernel's CFS takes (1 ms per 100 ms period) and Docker's NanoCpus too.
inline constexpr std::uint64_t kMinCpuMillis = 10;
// The CFS period both back ends write; the quota is cpuMillis of it.
inline constexpr std::uint64_t kCpuPeriodMicros = 100000;

struct SessionLimits {
  std::vector<int> cpus;  // empty: the parent's CPUs
  std::vector<int> mems;  // NUMA nodes; empty: the parent's
  std::optional<std::uint64_t> memoryBytes{};
  // Swap on top of memoryBytes (v1 memory.memsw = memory + swap, v2 memory.swap.max);
  // applied only with memoryBytes and where the kernel accounts swap.
  std::uint64_t swapBytes = 0;
  std::optional<std::uint64_t> pidsMax{};  // pids.max
  // CPU time in thousandths of a CPU (v2 cpu.max, v1 cpu.cfs_quota_us), at least
  // kMinCpuMillis; where no cpu controller is usable it is not enforced (logged at start).
  std::optional<std::uint64_t> cpuMillis{};
  // With fenceDevices, everything not in `devices` is denied (v1 devices.deny "a" then
  // devices.allow per rule; v2 a BPF_PROG_TYPE_CGROUP_DEVICE program).
  bool fenceDevices = false;
  std::vector<DeviceRule> devices{};
};

class LimitsBackend {
 public:
  virtual ~LimitsBackend() = default;
  // Creates the session's cgroups and applies the limits; returns the cgroup.procs files
  // the command must join (RunSpec::cgroupProcs). Calling it again for a session reuses them.
  virtual Result<std::vector<std::filesystem::path>> prepare(const std::string& sessionId,
                                                             const SessionLimits& limits) = 0;
  // Kills what is left in the session's cgroups and removes them; an unknown session is fine.
  virtual Result<void> release(const std::string& sessionId) = 0;
  virtual std::string describe() const = 0;
  virtual bool enforcing() const = 0;
  // Whether prepare() enforces SessionLimits::devices (a device controller or program).
  virtual bool fencesDevices() const = 0;
};

// v2 when <root>/cgroup.controllers lists cpuset and memory and <root>/<parent> (or <root>)
// is writable; else v1 when <root>/memory and <root>/cpuset are; else advisory. Logs in one
// line which, why, and what this kernel lacks (pids, swap accounting, a device fence).
// Fails only for a malformed `parent` (a relative path without "..").
Result<std::unique_ptr<LimitsBackend>> detectLimitsBackend(
    std::filesystem::path cgroupRoot = "/sys/fs/cgroup", std::string parent = "bai", LogSink log = stderrLogSink(),
    std::shared_ptr<CgroupFs> fs = kernelCgroupFs(),
    std::shared_ptr<DeviceProgramLoader> deviceProgramLoader = kernelDeviceProgramLoader());

}  // namespace bai::core
