// A fake kernel for the limits back ends: a temp dir laid out like /sys/fs/cgroup, on
// which mkdir creates the control files the kernel would, writes are checked and take
// effect as they would (subtree_control, cgroup.kill, cpuset ranges, joining an empty v1
// cpuset, memsw >= memory, v1 device lists), and rmdir is refused while processes remain.
// Every write is logged.
#pragma once

#include "runtime/cgroup_fs.hpp"

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace bai::test {

class FakeCgroupFs final : public core::CgroupFs {
 public:
  struct Options {
    std::string cpus = "0-3";  // the machine's CPUs and NUMA nodes
    std::string mems = "0";
    bool cgroupKill = true;    // v2 cgroup.kill exists (Linux >= 5.14)
    bool swapAccounting = true;  // v1 memory.memsw.*, v2 memory.swap.max
    bool pidsHierarchy = true;   // v1 only; v2 offers pids through cgroup.controllers
    bool devicesHierarchy = true;  // v1 only
    std::string cpuHierarchy;      // v1 only: "cpu", "cpu,cpuacct" (systemd's mount) or none
  };

  // A v2 root offering `controllers` ("cpuset cpu io memory pids").
  static void buildV2Root(const std::filesystem::path& root, const std::string& controllers, const Options& options);
  // A v1 hybrid like these build machines: memory, cpuset, pids, devices and cpu
  // hierarchies (the last three as `options` say), a v2 tree with nothing useful at <root>/unified.
  static void buildV1Root(const std::filesystem::path& root, const Options& options);

  FakeCgroupFs(std::filesystem::path root, Options options) : root_(std::move(root)), options_(std::move(options)) {}

  void makeReadOnly(const std::filesystem::path& dir) { readOnly_.insert(dir); }
  std::vector<std::pair<std::filesystem::path, std::string>> writes() const;

  bool exists(const std::filesystem::path& path) const override;
  bool writable(const std::filesystem::path& dir) const override;
  Result<std::string> read(const std::filesystem::path& file) const override;
  Result<void> write(const std::filesystem::path& file, std::string_view value) override;
  Result<void> makeDir(const std::filesystem::path& dir) override;
  Result<void> removeDir(const std::filesystem::path& dir) override;
  std::vector<std::filesystem::path> subdirectories(const std::filesystem::path& dir) const override;

 private:
  enum class Hierarchy { V2, V1Memory, V1Cpuset, V1Pids, V1Devices, V1Cpu };
  Hierarchy hierarchyOf(const std::filesystem::path& dir) const;
  Result<void> writeSubtreeControl(const std::filesystem::path& file, std::string_view value);
  Result<void> killAll(const std::filesystem::path& dir);
  Result<void> join(const std::filesystem::path& file, std::string_view value);
  Result<void> checkCpuset(const std::filesystem::path& file, std::string_view value) const;
  Result<void> checkMemoryOrder(const std::filesystem::path& file, std::uint64_t value) const;
  Result<void> writeDeviceRule(const std::filesystem::path& file, std::string_view value);
  Result<void> checkCpuQuota(const std::filesystem::path& file, std::string_view value) const;

  std::filesystem::path root_;
  Options options_;
  std::set<std::filesystem::path> readOnly_;
  mutable std::mutex mutex_;
  std::vector<std::pair<std::filesystem::path, std::string>> writes_;
};

// Parses the kernel's list format ("0-3,6") into numbers; false when malformed.
bool parseCpuList(const std::string& text, std::set<int>& numbers);

}  // namespace bai::test
