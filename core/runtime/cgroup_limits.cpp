#include "runtime/cgroup_limits.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <iterator>
#include <sstream>
#include <thread>

namespace bai::core {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxSessionIdLength = 128;
// Killed processes leave their cgroup within milliseconds; past this, something is stuck.
constexpr std::chrono::seconds kRemoveDeadline{5};
constexpr const char* kControllers[] = {"cpuset", "memory"};

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

std::string trim(const std::string& text) {
  std::size_t start = text.find_first_not_of(" \t\n");
  if (start == std::string::npos) return "";
  return text.substr(start, text.find_last_not_of(" \t\n") + 1 - start);
}

// The kernel's list format: "0-3,6".
std::string formatCpuList(std::vector<int> numbers) {
  std::sort(numbers.begin(), numbers.end());
  numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
  std::string text;
  for (std::size_t i = 0; i < numbers.size();) {
    std::size_t last = i;
    while (last + 1 < numbers.size() && numbers[last + 1] == numbers[last] + 1) ++last;
    if (!text.empty()) text += ",";
    text += std::to_string(numbers[i]);
    if (last > i) text += "-" + std::to_string(numbers[last]);
    i = last + 1;
  }
  return text;
}

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

// Child cgroups first (a session running as root may have made some), then this one,
// killing its members until the kernel lets it go.
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

// Keeps a failed prepare from leaving a half-configured cgroup behind.
template <class T>
Result<T> undoOnFailure(CgroupFs& cgroupFs, const std::vector<fs::path>& dirs, Result<T> result) {
  if (!result.ok()) {
    for (const fs::path& dir : dirs) (void)cgroupFs.removeDir(dir);
  }
  return result;
}

class CgroupV2Limits final : public LimitsBackend {
 public:
  CgroupV2Limits(std::shared_ptr<CgroupFs> cgroupFs, fs::path root, fs::path parent)
      : fs_(std::move(cgroupFs)), root_(std::move(root)), parent_(std::move(parent)) {}

  Result<std::vector<fs::path>> prepare(const std::string& sessionId, const SessionLimits& limits) override {
    if (Result<void> valid = checkSessionId(sessionId); !valid.ok()) return Failure{valid.error()};
    if (Result<void> ready = prepareParents(); !ready.ok()) return Failure{ready.error()};
    fs::path dir = sessionDir(sessionId);
    if (Result<void> made = fs_->makeDir(dir); !made.ok()) return Failure{made.error()};
    Result<void> applied = apply(dir, limits);
    if (!applied.ok()) return undoOnFailure(*fs_, {dir}, Result<std::vector<fs::path>>(Failure{applied.error()}));
    return std::vector<fs::path>{dir / "cgroup.procs"};
  }

  Result<void> release(const std::string& sessionId) override {
    if (Result<void> valid = checkSessionId(sessionId); !valid.ok()) return valid;
    return killAndRemove(*fs_, sessionDir(sessionId), std::chrono::steady_clock::now() + kRemoveDeadline);
  }

  std::string describe() const override {
    return "cgroup v2 at " + (root_ / parent_).string() + " (cpuset, memory)";
  }
  bool enforcing() const override { return true; }
  bool fencesDevices() const override { return false; }  // TODO(issue 18): the device fence

 private:
  fs::path sessionDir(const std::string& sessionId) const { return root_ / parent_ / sessionCgroupName(sessionId); }

  // Each level down to the parent must hand cpuset and memory to its children.
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
    std::istringstream words(*enabled);
    std::vector<std::string> present{std::istream_iterator<std::string>(words), std::istream_iterator<std::string>()};
    for (const char* controller : kControllers) {
      if (std::find(present.begin(), present.end(), controller) != present.end()) continue;
      Result<void> written = fs_->write(dir / "cgroup.subtree_control", std::string("+") + controller);
      if (!written.ok()) {
        return fail(ErrorCode::Internal, written.error().message +
                                             " (a v2 cgroup with processes of its own cannot enable controllers)");
      }
    }
    return {};
  }

  Result<void> apply(const fs::path& dir, const SessionLimits& limits) {
    if (!limits.cpus.empty()) {
      if (Result<void> r = fs_->write(dir / "cpuset.cpus", formatCpuList(limits.cpus)); !r.ok()) return r;
    }
    if (!limits.mems.empty()) {
      if (Result<void> r = fs_->write(dir / "cpuset.mems", formatCpuList(limits.mems)); !r.ok()) return r;
    }
    if (limits.memoryBytes) {
      if (Result<void> r = fs_->write(dir / "memory.max", std::to_string(*limits.memoryBytes)); !r.ok()) return r;
    }
    return {};
  }

  std::shared_ptr<CgroupFs> fs_;
  fs::path root_;
  fs::path parent_;
};

class CgroupV1Limits final : public LimitsBackend {
 public:
  CgroupV1Limits(std::shared_ptr<CgroupFs> cgroupFs, const fs::path& root, fs::path parent)
      : fs_(std::move(cgroupFs)), memoryRoot_(root / "memory"), cpusetRoot_(root / "cpuset"), parent_(std::move(parent)) {}

  Result<std::vector<fs::path>> prepare(const std::string& sessionId, const SessionLimits& limits) override {
    if (Result<void> valid = checkSessionId(sessionId); !valid.ok()) return Failure{valid.error()};
    if (Result<void> ready = prepareParents(); !ready.ok()) return Failure{ready.error()};
    fs::path memoryDir = memoryRoot_ / parent_ / sessionCgroupName(sessionId);
    fs::path cpusetDir = cpusetRoot_ / parent_ / sessionCgroupName(sessionId);
    if (Result<void> made = fs_->makeDir(memoryDir); !made.ok()) return Failure{made.error()};
    if (Result<void> made = fs_->makeDir(cpusetDir); !made.ok()) {
      return undoOnFailure(*fs_, {memoryDir}, Result<std::vector<fs::path>>(Failure{made.error()}));
    }
    Result<void> applied = apply(memoryDir, cpusetDir, limits);
    if (!applied.ok()) {
      return undoOnFailure(*fs_, {memoryDir, cpusetDir}, Result<std::vector<fs::path>>(Failure{applied.error()}));
    }
    return std::vector<fs::path>{memoryDir / "cgroup.procs", cpusetDir / "cgroup.procs"};
  }

  Result<void> release(const std::string& sessionId) override {
    if (Result<void> valid = checkSessionId(sessionId); !valid.ok()) return valid;
    auto deadline = std::chrono::steady_clock::now() + kRemoveDeadline;
    Result<void> memory = killAndRemove(*fs_, memoryRoot_ / parent_ / sessionCgroupName(sessionId), deadline);
    Result<void> cpuset = killAndRemove(*fs_, cpusetRoot_ / parent_ / sessionCgroupName(sessionId), deadline);
    return memory.ok() ? cpuset : memory;
  }

  std::string describe() const override {
    return "cgroup v1 at " + memoryRoot_.parent_path().string() + "/{memory,cpuset}/" + parent_.string();
  }
  bool enforcing() const override { return true; }
  bool fencesDevices() const override { return false; }  // TODO(issue 18): the device fence

 private:
  Result<void> prepareParents() {
    fs::path memoryLevel = memoryRoot_;
    fs::path cpusetLevel = cpusetRoot_;
    for (const fs::path& component : parent_) {
      memoryLevel /= component;
      if (Result<void> made = fs_->makeDir(memoryLevel); !made.ok()) return made;
      fs::path above = cpusetLevel;
      cpusetLevel /= component;
      if (Result<void> made = fs_->makeDir(cpusetLevel); !made.ok()) return made;
      if (Result<void> inherited = inheritCpuset(cpusetLevel, above); !inherited.ok()) return inherited;
    }
    return {};
  }

  // A new v1 cpuset starts with no CPUs and no nodes, and takes no process until it has both.
  Result<void> inheritCpuset(const fs::path& dir, const fs::path& above) {
    for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
      Result<std::string> own = fs_->read(dir / file);
      if (!own.ok()) return Failure{own.error()};
      if (!trim(*own).empty()) continue;
      Result<std::string> inherited = fs_->read(above / file);
      if (!inherited.ok()) return Failure{inherited.error()};
      if (Result<void> written = fs_->write(dir / file, trim(*inherited)); !written.ok()) return written;
    }
    return {};
  }

  Result<void> apply(const fs::path& memoryDir, const fs::path& cpusetDir, const SessionLimits& limits) {
    if (limits.memoryBytes) {
      Result<void> r = fs_->write(memoryDir / "memory.limit_in_bytes", std::to_string(*limits.memoryBytes));
      if (!r.ok()) return r;
    }
    if (!limits.cpus.empty()) {
      if (Result<void> r = fs_->write(cpusetDir / "cpuset.cpus", formatCpuList(limits.cpus)); !r.ok()) return r;
    }
    if (!limits.mems.empty()) {
      if (Result<void> r = fs_->write(cpusetDir / "cpuset.mems", formatCpuList(limits.mems)); !r.ok()) return r;
    }
    return inheritCpuset(cpusetDir, cpusetDir.parent_path());  // what the limits left unset
  }

  std::shared_ptr<CgroupFs> fs_;
  fs::path memoryRoot_;
  fs::path cpusetRoot_;
  fs::path parent_;
};

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

bool listsWord(const std::string& text, const std::string& word) {
  std::istringstream words(text);
  return std::find(std::istream_iterator<std::string>(words), std::istream_iterator<std::string>(), word) !=
         std::istream_iterator<std::string>();
}

// The dir we will write in: the parent when it exists, else where it would be created.
fs::path firstExisting(const CgroupFs& cgroupFs, fs::path dir) {
  while (!cgroupFs.exists(dir) && dir.has_relative_path()) dir = dir.parent_path();
  return dir;
}

// Empty when v2 is usable, else why not.
std::string whyNotV2(const CgroupFs& cgroupFs, const fs::path& root, const fs::path& parent) {
  Result<std::string> controllers = cgroupFs.read(root / "cgroup.controllers");
  if (!controllers.ok()) return (root / "cgroup.controllers").string() + " is missing";
  for (const char* controller : kControllers) {
    if (!listsWord(*controllers, controller)) return std::string("v2 has no ") + controller + " controller";
  }
  fs::path writeDir = firstExisting(cgroupFs, root / parent);
  if (!cgroupFs.writable(writeDir)) return writeDir.string() + " is not writable";
  return "";
}

std::string whyNotV1(const CgroupFs& cgroupFs, const fs::path& root, const fs::path& parent) {
  for (auto [hierarchy, probe] : {std::pair{"memory", "memory.limit_in_bytes"}, std::pair{"cpuset", "cpuset.cpus"}}) {
    if (!cgroupFs.exists(root / hierarchy / probe)) return (root / hierarchy).string() + " is not a v1 " + hierarchy + " hierarchy";
    fs::path writeDir = firstExisting(cgroupFs, root / hierarchy / parent);
    if (!cgroupFs.writable(writeDir)) return writeDir.string() + " is not writable";
  }
  return "";
}

bool isPlainRelativePath(const fs::path& path) {
  if (path.empty() || path.is_absolute()) return false;
  return std::none_of(path.begin(), path.end(), [](const fs::path& part) { return part == ".." || part == "."; });
}

}  // namespace

Result<std::unique_ptr<LimitsBackend>> detectLimitsBackend(fs::path cgroupRoot, std::string parent, LogSink log,
                                                           std::shared_ptr<CgroupFs> cgroupFs) {
  fs::path parentPath = fs::path(parent).lexically_normal();
  if (!isPlainRelativePath(parentPath)) {
    return fail(ErrorCode::InvalidArgument, "cgroup parent '" + parent + "' must be a relative path without '..'");
  }
  std::unique_ptr<LimitsBackend> backend;
  std::string notV2 = whyNotV2(*cgroupFs, cgroupRoot, parentPath);
  std::string notV1;
  if (notV2.empty()) {
    backend = std::make_unique<CgroupV2Limits>(cgroupFs, cgroupRoot, parentPath);
  } else if ((notV1 = whyNotV1(*cgroupFs, cgroupRoot, parentPath)).empty()) {
    backend = std::make_unique<CgroupV1Limits>(cgroupFs, cgroupRoot, parentPath);
  } else {
    backend = std::make_unique<AdvisoryLimits>("cgroup v2: " + notV2 + "; cgroup v1: " + notV1);
  }
  std::string line = "limits: " + backend->describe();
  if (!notV2.empty() && backend->enforcing()) line += " (v2 not used: " + notV2 + ")";
  log(backend->enforcing() ? LogLevel::Info : LogLevel::Warning, "limits", line);
  return backend;
}

}  // namespace bai::core
