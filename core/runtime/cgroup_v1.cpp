#include "runtime/cgroup_v1.hpp"

#include "runtime/device_rules.hpp"

#include <charconv>
#include <limits>

namespace bai::core {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMemoryLimit = "memory.limit_in_bytes";
constexpr const char* kMemswLimit = "memory.memsw.limit_in_bytes";
constexpr const char* kCfsQuota = "cpu.cfs_quota_us";
// Where v1 mounts the cpu controller: alone, or co-mounted with cpuacct (systemd's
// layout, which also links "cpu" to it).
constexpr const char* kCpuHierarchies[] = {"cpu", "cpu,cpuacct"};

struct Hierarchy {
  std::string name;  // "memory", "cpuset", "pids", "devices", "cpu"
  fs::path root;     // <cgroup root>/<its mount>: the name, or "cpu,cpuacct"
};

// Whether `hierarchy` is a v1 hierarchy (shown by `probe` in its root) we may write in.
std::string whyNotUsable(const CgroupFs& cgroupFs, const fs::path& root, const std::string& hierarchy,
                         const char* probe, const fs::path& parent) {
  if (!cgroupFs.exists(root / hierarchy / probe)) {
    return (root / hierarchy).string() + " is not a v1 " + hierarchy + " hierarchy";
  }
  fs::path writeDir = firstExisting(cgroupFs, root / hierarchy / parent);
  if (!cgroupFs.writable(writeDir)) return writeDir.string() + " is not writable";
  return "";
}

std::uint64_t saturatingSum(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b ? std::numeric_limits<std::uint64_t>::max() : a + b;
}

class CgroupV1Limits final : public LimitsBackend {
 public:
  // `cpuMount`: the cpu hierarchy's directory under `root`; empty without one.
  CgroupV1Limits(std::shared_ptr<CgroupFs> cgroupFs, const fs::path& root, fs::path parent, bool pids, bool devices,
                 const std::string& cpuMount, bool swapAccounting)
      : fs_(std::move(cgroupFs)), root_(root), parent_(std::move(parent)), swapAccounting_(swapAccounting) {
    hierarchies_ = {{"memory", root / "memory"}, {"cpuset", root / "cpuset"}};
    if (pids) hierarchies_.push_back({"pids", root / "pids"});
    if (devices) hierarchies_.push_back({"devices", root / "devices"});
    if (!cpuMount.empty()) hierarchies_.push_back({"cpu", root / cpuMount});
  }

  Result<std::vector<fs::path>> prepare(const std::string& sessionId, const SessionLimits& limits) override {
    if (Result<void> valid = checkSessionId(sessionId); !valid.ok()) return Failure{valid.error()};
    if (Result<void> ready = prepareParents(); !ready.ok()) return Failure{ready.error()};
    std::vector<fs::path> made;
    std::vector<fs::path> procs;
    for (const Hierarchy& hierarchy : hierarchies_) {
      fs::path dir = sessionDir(hierarchy, sessionId);
      if (Result<void> created = fs_->makeDir(dir); !created.ok()) {
        removeQuietly(*fs_, made);
        return Failure{created.error()};
      }
      made.push_back(dir);
      procs.push_back(dir / "cgroup.procs");
    }
    if (Result<void> applied = apply(sessionId, limits); !applied.ok()) {
      removeQuietly(*fs_, made);
      return Failure{applied.error()};
    }
    return procs;
  }

  Result<void> release(const std::string& sessionId) override {
    if (Result<void> valid = checkSessionId(sessionId); !valid.ok()) return valid;
    auto deadline = std::chrono::steady_clock::now() + kCgroupRemoveDeadline;
    Result<void> first;
    for (const Hierarchy& hierarchy : hierarchies_) {
      Result<void> removed = killAndRemove(*fs_, sessionDir(hierarchy, sessionId), deadline);
      if (!removed.ok() && first.ok()) first = removed;
    }
    return first;
  }

  std::string describe() const override {
    std::string names;
    for (const Hierarchy& hierarchy : hierarchies_) names += (names.empty() ? "" : ",") + hierarchy.name;
    return "cgroup v1 at " + root_.string() + "/{" + names + "}/" + parent_.string() +
           (swapAccounting_ ? ", swap limited by memory.memsw" : "");
  }
  bool enforcing() const override { return true; }
  bool fencesDevices() const override { return find("devices") != nullptr; }

 private:
  const Hierarchy* find(const std::string& name) const {
    for (const Hierarchy& hierarchy : hierarchies_) {
      if (hierarchy.name == name) return &hierarchy;
    }
    return nullptr;
  }

  fs::path sessionDir(const Hierarchy& hierarchy, const std::string& sessionId) const {
    return hierarchy.root / parent_ / sessionCgroupName(sessionId);
  }

  Result<void> prepareParents() {
    for (const Hierarchy& hierarchy : hierarchies_) {
      fs::path level = hierarchy.root;
      for (const fs::path& component : parent_) {
        fs::path above = level;
        level /= component;
        if (Result<void> made = fs_->makeDir(level); !made.ok()) return made;
        if (hierarchy.name != "cpuset") continue;
        if (Result<void> inherited = inheritCpuset(level, above); !inherited.ok()) return inherited;
      }
    }
    return {};
  }

  // A new v1 cpuset starts with no CPUs and no nodes, and takes no process until it has both.
  Result<void> inheritCpuset(const fs::path& dir, const fs::path& above) {
    for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
      Result<std::string> own = fs_->read(dir / file);
      if (!own.ok()) return Failure{own.error()};
      if (!trimSpace(*own).empty()) continue;
      Result<std::string> inherited = fs_->read(above / file);
      if (!inherited.ok()) return Failure{inherited.error()};
      if (Result<void> written = fs_->write(dir / file, trimSpace(*inherited)); !written.ok()) return written;
    }
    return {};
  }

  Result<void> apply(const std::string& sessionId, const SessionLimits& limits) {
    if (limits.cpuMillis) {
      Result<std::string> quota = cfsQuotaMicros(*limits.cpuMillis);
      if (!quota.ok()) return Failure{quota.error()};
      if (const Hierarchy* cpu = find("cpu"); cpu != nullptr) {
        // The period first: the kernel checks the quota against the period it has.
        fs::path dir = sessionDir(*cpu, sessionId);
        if (Result<void> r = fs_->write(dir / "cpu.cfs_period_us", std::to_string(kCpuPeriodMicros)); !r.ok()) return r;
        if (Result<void> r = fs_->write(dir / kCfsQuota, *quota); !r.ok()) return r;
      }
    }
    if (limits.memoryBytes) {
      if (Result<void> r = applyMemory(sessionDir(*find("memory"), sessionId), limits); !r.ok()) return r;
    }
    fs::path cpusetDir = sessionDir(*find("cpuset"), sessionId);
    if (!limits.cpus.empty()) {
      if (Result<void> r = fs_->write(cpusetDir / "cpuset.cpus", formatCpuList(limits.cpus)); !r.ok()) return r;
    }
    if (!limits.mems.empty()) {
      if (Result<void> r = fs_->write(cpusetDir / "cpuset.mems", formatCpuList(limits.mems)); !r.ok()) return r;
    }
    // What the limits left unset comes from the parent.
    if (Result<void> r = inheritCpuset(cpusetDir, cpusetDir.parent_path()); !r.ok()) return r;
    if (const Hierarchy* pids = find("pids"); pids != nullptr && limits.pidsMax) {
      Result<void> r = fs_->write(sessionDir(*pids, sessionId) / "pids.max", std::to_string(*limits.pidsMax));
      if (!r.ok()) return r;
    }
    if (const Hierarchy* devices = find("devices"); devices != nullptr && limits.fenceDevices) {
      return fenceDevices(sessionDir(*devices, sessionId), limits.devices);
    }
    return {};
  }

  // The kernel keeps memsw >= memory at every moment: a higher ceiling goes in before the
  // memory limit, a lower one after it (a retried prepare may lower both).
  Result<void> applyMemory(const fs::path& dir, const SessionLimits& limits) {
    std::string memory = std::to_string(*limits.memoryBytes);
    if (!swapAccounting_) return fs_->write(dir / kMemoryLimit, memory);
    std::uint64_t memsw = saturatingSum(*limits.memoryBytes, limits.swapBytes);
    Result<std::string> current = fs_->read(dir / kMemswLimit);
    if (!current.ok()) return Failure{current.error()};
    std::string currentText = trimSpace(*current);
    std::uint64_t currentMemsw = 0;
    auto [end, error] = std::from_chars(currentText.data(), currentText.data() + currentText.size(), currentMemsw);
    if (error != std::errc() || end != currentText.data() + currentText.size()) {
      return fail(ErrorCode::Internal, (dir / kMemswLimit).string() + " holds '" + currentText + "', not a number");
    }
    bool raising = memsw > currentMemsw;
    if (raising) {
      if (Result<void> r = fs_->write(dir / kMemswLimit, std::to_string(memsw)); !r.ok()) return r;
      return fs_->write(dir / kMemoryLimit, memory);
    }
    if (Result<void> r = fs_->write(dir / kMemoryLimit, memory); !r.ok()) return r;
    return fs_->write(dir / kMemswLimit, std::to_string(memsw));
  }

  // Deny everything, then allow each rule; a retried prepare starts over the same way.
  Result<void> fenceDevices(const fs::path& dir, const std::vector<DeviceRule>& rules) {
    for (const DeviceRule& rule : rules) {
      if (Result<void> valid = checkDeviceRule(rule); !valid.ok()) return valid;
    }
    if (Result<void> r = fs_->write(dir / "devices.deny", "a"); !r.ok()) return r;
    for (const DeviceRule& rule : rules) {
      if (Result<void> r = fs_->write(dir / "devices.allow", devicesAllowLine(rule)); !r.ok()) return r;
    }
    return {};
  }

  std::shared_ptr<CgroupFs> fs_;
  fs::path root_;
  fs::path parent_;
  bool swapAccounting_;
  std::vector<Hierarchy> hierarchies_;  // memory and cpuset first, then the optional ones
};

}  // namespace

std::string whyNotCgroupV1(const CgroupFs& cgroupFs, const fs::path& root, const fs::path& parent) {
  for (auto [hierarchy, probe] : {std::pair{"memory", kMemoryLimit}, std::pair{"cpuset", "cpuset.cpus"}}) {
    if (std::string why = whyNotUsable(cgroupFs, root, hierarchy, probe, parent); !why.empty()) return why;
  }
  return "";
}

LimitsBackendChoice makeCgroupV1Limits(std::shared_ptr<CgroupFs> cgroupFs, const fs::path& root,
                                       const fs::path& parent) {
  std::vector<std::string> gaps;
  // The v1 pids root has no pids.max; `tasks` exists only in v1.
  std::string notPids = whyNotUsable(*cgroupFs, root, "pids", "tasks", parent);
  if (!notPids.empty()) gaps.push_back(notPids + ": pids not limited");
  std::string notDevices = whyNotUsable(*cgroupFs, root, "devices", "devices.allow", parent);
  if (!notDevices.empty()) gaps.push_back(notDevices + ": devices not fenced");
  std::string cpuMount;
  std::string notCpu = (root / "cpu").string() + " is not a v1 cpu hierarchy";
  for (const char* mount : kCpuHierarchies) {
    if (!cgroupFs->exists(root / mount / kCfsQuota)) continue;
    notCpu = whyNotUsable(*cgroupFs, root, mount, kCfsQuota, parent);
    if (notCpu.empty()) cpuMount = mount;
    break;
  }
  if (!notCpu.empty()) gaps.push_back(notCpu + ": cpu quota not enforced");
  bool swapAccounting = cgroupFs->exists(root / "memory" / kMemswLimit);
  if (!swapAccounting) gaps.push_back(std::string("no swap accounting (no ") + kMemswLimit + "): swap not limited");
  auto backend = std::make_unique<CgroupV1Limits>(std::move(cgroupFs), root, parent, notPids.empty(),
                                                  notDevices.empty(), cpuMount, swapAccounting);
  return {std::move(backend), std::move(gaps)};
}

}  // namespace bai::core
