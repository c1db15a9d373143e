#include "runtime/cgroup_limits.hpp"

#include "runtime/cgroup_common.hpp"
#include "runtime/cgroup_v1.hpp"
#include "runtime/cgroup_v2.hpp"

#include <algorithm>

namespace bai::core {
namespace {

namespace fs = std::filesystem;

class AdvisoryLimits final : public LimitsBackend {
 public:
  explicit AdvisoryLimits(std::string reason) : reason_(std::move(reason)) {}

  Result<std::vector<fs::path>> prepare(const std::string& sessionId, const SessionLimits&) override {
    if (Result<void> valid = checkSessionId(sessionId); !valid.ok()) return Failure{valid.error()};
    return std::vector<fs::path>{};
  }
  Result<void> release(const std::string& sessionId) override { return checkSessionId(sessionId); }
  std::string describe() const override { return "advisory, limits not enforced: " + reason_; }
  bool enforcing() const override { return false; }
  bool fencesDevices() const override { return false; }

 private:
  std::string reason_;
};

bool isPlainRelativePath(const fs::path& path) {
  if (path.empty() || path.is_absolute()) return false;
  return std::none_of(path.begin(), path.end(), [](const fs::path& part) { return part == ".." || part == "."; });
}

}  // namespace

Result<std::unique_ptr<LimitsBackend>> detectLimitsBackend(fs::path cgroupRoot, std::string parent, LogSink log,
                                                           std::shared_ptr<CgroupFs> cgroupFs,
                                                           std::shared_ptr<DeviceProgramLoader> deviceProgramLoader) {
  fs::path parentPath = fs::path(parent).lexically_normal();
  if (!isPlainRelativePath(parentPath)) {
    return fail(ErrorCode::InvalidArgument, "cgroup parent '" + parent + "' must be a relative path without '..'");
  }
  LimitsBackendChoice choice;
  std::string notV2 = whyNotCgroupV2(*cgroupFs, cgroupRoot, parentPath);
  std::string notV1;
  if (notV2.empty()) {
    choice = makeCgroupV2Limits(cgroupFs, cgroupRoot, parentPath, std::move(deviceProgramLoader));
  } else if ((notV1 = whyNotCgroupV1(*cgroupFs, cgroupRoot, parentPath)).empty()) {
    choice = makeCgroupV1Limits(cgroupFs, cgroupRoot, parentPath);
  } else {
    choice.backend = std::make_unique<AdvisoryLimits>("cgroup v2: " + notV2 + "; cgroup v1: " + notV1);
  }
  std::string line = "limits: " + choice.backend->describe();
  for (const std::string& gap : choice.gaps) line += "; " + gap;
  if (!notV2.empty() && choice.backend->enforcing()) line += " (v2 not used: " + notV2 + ")";
  log(choice.backend->enforcing() ? LogLevel::Info : LogLevel::Warning, "limits", line);
  return std::move(choice.backend);
}

}  // namespace bai::core
