#include "runtime/cgroup_v2.hpp"

#include "runtime/device_program.hpp"

#include <iterator>

namespace bai::core {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRequiredControllers[] = {"cpuset", "memory"};

class CgroupV2Limits final : public LimitsBackend {
 public:
  CgroupV2Limits(std::shared_ptr<CgroupFs> cgroupFs, fs::path root, fs::path parent, bool pids, bool cpu,
                 std::shared_ptr<DeviceProgramLoader> loader)
      : fs_(std::move(cgroupFs)), root_(std::move(root)), parent_(std::move(parent)), loader_(std::move(loader)) {
    controllers_.assign(std::begin(kRequiredControllers), std::end(kRequiredControllers));
    if (pids) controllers_.emplace_back("pids");
    if (cpu) controllers_.emplace_back("cpu");
  }

  Result<std::vector<fs::path>> prepare(const std::string& sessionId, const SessionLimits& limits) override {
    if (Result<void> valid = checkSessionId(sessionId); !valid.ok()) return Failure{valid.error()};
    if (Result<void> ready = prepareParents(); !ready.ok()) return Failure{ready.error()};
    fs::path dir = sessionDir(sessionId);
    if (Result<void> made = fs_->makeDir(dir); !made.ok()) return Failure{made.error()};
    if (Result<void> applied = apply(dir, limits); !applied.ok()) {
      removeQuietly(*fs_, {dir});
      return Failure{applied.error()};
    }
    return std::vector<fs::path>{dir / "cgroup.procs"};
  }

  Result<void> release(const std::string& sessionId) override {
    if (Result<void> valid = checkSessionId(sessionId); !valid.ok()) return valid;
    return killAndRemove(*fs_, sessionDir(sessionId), std::chrono::steady_clock::now() + kCgroupRemoveDeadline);
  }

  std::string describe() const override {
    std::string names;
    for (const std::string& controller : controllers_) names += (names.empty() ? "" : ", ") + controller;
    if (loader_) names += ", device program";
    return "cgroup v2 at " + (root_ / parent_).string() + " (" + names + ")";
  }
  bool enforcing() const override { return true; }
  bool fencesDevices() const override { return loader_ != nullptr; }

 private:
  fs::path sessionDir(const std::string& sessionId) const { return root_ / parent_ / sessionCgroupName(sessionId); }

  // Each level down to the parent must hand our controllers to its children.
  Result<void> prepareParents() {
    fs::path level = root_;
    if (Result<void> enabled = enableControllers(level); !enabled.ok()) return enabled;
    for (const fs::path& component : parent_) {
      level /= component;
      if (Result<void> made = fs_->makeDir(level); !made.ok()) return made;
      if (Result<void> enabled = enableControllers(level); !enabled.ok()) return enabled;
    }
    return {};
  }

  Result<void> enableControllers(const fs::path& dir) {
    Result<std::string> enabled = fs_->read(dir / "cgroup.subtree_control");
    if (!enabled.ok()) return Failure{enabled.error()};
    for (const std::string& controller : controllers_) {
      if (listsWord(*enabled, controller)) continue;
      Result<void> written = fs_->write(dir / "cgroup.subtree_control", "+" + controller);
      if (!written.ok()) {
        return fail(ErrorCode::Internal, written.error().message +
                                             " (a v2 cgroup with processes of its own cannot enable controllers)");
      }
    }
    return {};
  }

  Result<void> apply(const fs::path& dir, const SessionLimits& limits) {
    if (limits.cpuMillis) {
      Result<std::string> quota = cfsQuotaMicros(*limits.cpuMillis);
      if (!quota.ok()) return Failure{quota.error()};
      if (fs_->exists(dir / "cpu.max")) {
        Result<void> r = fs_->write(dir / "cpu.max", *quota + " " + std::to_string(kCpuPeriodMicros));
        if (!r.ok()) return r;
      }
    }
    if (!limits.cpus.empty()) {
      if (Result<void> r = fs_->write(dir / "cpuset.cpus", formatCpuList(limits.cpus)); !r.ok()) return r;
    }
    if (!limits.mems.empty()) {
      if (Result<void> r = fs_->write(dir / "cpuset.mems", formatCpuList(limits.mems)); !r.ok()) return r;
    }
    if (limits.memoryBytes) {
      if (Result<void> r = fs_->write(dir / "memory.max", std::to_string(*limits.memoryBytes)); !r.ok()) return r;
      // Absent without swap accounting; v2 limits swap on its own, no order to keep.
      if (fs_->exists(dir / "memory.swap.max")) {
        if (Result<void> r = fs_->write(dir / "memory.swap.max", std::to_string(limits.swapBytes)); !r.ok()) return r;
      }
    }
    if (limits.pidsMax && fs_->exists(dir / "pids.max")) {
      if (Result<void> r = fs_->write(dir / "pids.max", std::to_string(*limits.pidsMax)); !r.ok()) return r;
    }
    if (limits.fenceDevices && loader_) {
      Result<std::vector<bpf_insn>> program = buildDeviceProgram(limits.devices);
      if (!program.ok()) return Failure{program.error()};
      return loader_->attach(dir, *program);
    }
    return {};
  }

  std::shared_ptr<CgroupFs> fs_;
  fs::path root_;
  fs::path parent_;
  std::vector<std::string> controllers_;
  std::shared_ptr<DeviceProgramLoader> loader_;  // null: device programs do not load here
};

}  // namespace

std::string whyNotCgroupV2(const CgroupFs& cgroupFs, const fs::path& root, const fs::path& parent) {
  Result<std::string> controllers = cgroupFs.read(root / "cgroup.controllers");
  if (!controllers.ok()) return (root / "cgroup.controllers").string() + " is missing";
  for (const char* controller : kRequiredControllers) {
    if (!listsWord(*controllers, controller)) return std::string("v2 has no ") + controller + " controller";
  }
  fs::path writeDir = firstExisting(cgroupFs, root / parent);
  if (!cgroupFs.writable(writeDir)) return writeDir.string() + " is not writable";
  return "";
}

LimitsBackendChoice makeCgroupV2Limits(std::shared_ptr<CgroupFs> cgroupFs, const fs::path& root, const fs::path& parent,
                                       std::shared_ptr<DeviceProgramLoader> loader) {
  std::vector<std::string> gaps;
  Result<std::string> controllers = cgroupFs->read(root / "cgroup.controllers");
  bool pids = controllers.ok() && listsWord(*controllers, "pids");
  if (!pids) gaps.push_back("v2 has no pids controller: pids not limited");
  bool cpu = controllers.ok() && listsWord(*controllers, "cpu");
  if (!cpu) gaps.push_back("v2 has no cpu controller: cpu quota not enforced");
  if (std::string why = loader->whyUnavailable(); !why.empty()) {
    gaps.push_back("device programs do not load (" + why + "): devices not fenced");
    loader = nullptr;
  }
  auto backend = std::make_unique<CgroupV2Limits>(std::move(cgroupFs), root, parent, pids, cpu, std::move(loader));
  return {std::move(backend), std::move(gaps)};
}

}  // namespace bai::core
