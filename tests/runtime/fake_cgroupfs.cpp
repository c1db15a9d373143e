#include "fake_cgroupfs.hpp"

#include "runtime/atomic_file.hpp"
#include "runtime/proc_stat.hpp"

#include <algorithm>
#include <csignal>
#include <fstream>
#include <iterator>
#include <sstream>
#include <unistd.h>

namespace bai::test {
namespace {

namespace fs = std::filesystem;

void createFile(const fs::path& file, const std::string& content) {
  std::ofstream out(file, std::ios::trunc);
  out << content;
}

std::string contentOf(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string trim(const std::string& text) {
  std::size_t start = text.find_first_not_of(" \n");
  if (start == std::string::npos) return "";
  return text.substr(start, text.find_last_not_of(" \n") + 1 - start);
}

std::set<std::string> words(const std::string& text) {
  std::istringstream stream(text);
  return {std::istream_iterator<std::string>(stream), std::istream_iterator<std::string>()};
}

std::string joinWords(const std::set<std::string>& set) {
  std::string text;
  for (const std::string& word : set) text += (text.empty() ? "" : " ") + word;
  return text + "\n";
}

// The kernel drops a process from cgroup.procs when it exits, before it becomes a zombie.
bool isLive(pid_t pid) {
  Result<core::ProcessStat> stat = core::readProcessStat(pid);
  return stat.ok() && stat->state != 'Z';
}

Failure<Error> kernelError(const fs::path& file, const char* why) {
  return fail(ErrorCode::Internal, "writing " + file.string() + ": " + why);
}

}  // namespace

bool parseCpuList(const std::string& text, std::set<int>& numbers) {
  std::istringstream ranges(trim(text));
  for (std::string range; std::getline(ranges, range, ',');) {
    int first = 0;
    int last = 0;
    char dash = 0;
    std::istringstream parts(range);
    if (!(parts >> first)) return false;
    last = first;
    if (parts >> dash && (dash != '-' || !(parts >> last))) return false;
    for (int n = first; n <= last; ++n) numbers.insert(n);
  }
  return true;
}

void FakeCgroupFs::buildV2Root(const fs::path& root, const std::string& controllers, const Options& options) {
  fs::create_directories(root);
  createFile(root / "cgroup.controllers", controllers + "\n");
  createFile(root / "cgroup.subtree_control", "");
  createFile(root / "cgroup.procs", "");
  createFile(root / "cpuset.cpus.effective", options.cpus + "\n");
  createFile(root / "cpuset.mems.effective", options.mems + "\n");
}

void FakeCgroupFs::buildV1Root(const fs::path& root, const Options& options) {
  fs::create_directories(root / "memory");
  createFile(root / "memory" / "cgroup.procs", "");
  createFile(root / "memory" / "tasks", "");
  createFile(root / "memory" / "memory.limit_in_bytes", "9223372036854771712\n");
  createFile(root / "memory" / "memory.usage_in_bytes", "0\n");
  if (options.swapAccounting) createFile(root / "memory" / "memory.memsw.limit_in_bytes", "9223372036854771712\n");
  fs::create_directories(root / "cpuset");
  createFile(root / "cpuset" / "cgroup.procs", "");
  createFile(root / "cpuset" / "tasks", "");
  createFile(root / "cpuset" / "cpuset.cpus", options.cpus + "\n");
  createFile(root / "cpuset" / "cpuset.mems", options.mems + "\n");
  createFile(root / "cpuset" / "cgroup.clone_children", "0\n");
  if (options.pidsHierarchy) {  // the v1 root has no pids.max
    fs::create_directories(root / "pids");
    createFile(root / "pids" / "cgroup.procs", "");
    createFile(root / "pids" / "tasks", "");
  }
  if (options.devicesHierarchy) {
    fs::create_directories(root / "devices");
    createFile(root / "devices" / "cgroup.procs", "");
    createFile(root / "devices" / "tasks", "");
    createFile(root / "devices" / "devices.allow", "");
    createFile(root / "devices" / "devices.deny", "");
    createFile(root / "devices" / "devices.list", "a *:* rwm\n");
  }
  if (!options.cpuHierarchy.empty()) {
    fs::create_directories(root / options.cpuHierarchy);
    createFile(root / options.cpuHierarchy / "cgroup.procs", "");
    createFile(root / options.cpuHierarchy / "tasks", "");
    createFile(root / options.cpuHierarchy / "cpu.cfs_quota_us", "-1\n");
    createFile(root / options.cpuHierarchy / "cpu.cfs_period_us", "100000\n");
  }
  fs::create_directories(root / "unified");
  createFile(root / "unified" / "cgroup.controllers", "hugetlb\n");
}

std::vector<std::pair<fs::path, std::string>> FakeCgroupFs::writes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return writes_;
}

FakeCgroupFs::Hierarchy FakeCgroupFs::hierarchyOf(const fs::path& dir) const {
  fs::path relative = dir.lexically_relative(root_);
  std::string first = relative.begin() == relative.end() ? "" : relative.begin()->string();
  if (first == "memory") return Hierarchy::V1Memory;
  if (first == "cpuset") return Hierarchy::V1Cpuset;
  if (first == "pids") return Hierarchy::V1Pids;
  if (first == "devices") return Hierarchy::V1Devices;
  if (first == "cpu" || first == "cpu,cpuacct") return Hierarchy::V1Cpu;
  return Hierarchy::V2;
}

bool FakeCgroupFs::exists(const fs::path& path) const { return fs::exists(path); }

bool FakeCgroupFs::writable(const fs::path& dir) const {
  for (fs::path level = dir; level.has_relative_path(); level = level.parent_path()) {
    if (readOnly_.count(level)) return false;
  }
  return fs::is_directory(dir);
}

Result<std::string> FakeCgroupFs::read(const fs::path& file) const {
  if (!fs::is_regular_file(file)) return fail(ErrorCode::NotFound, file.string() + ": No such file or directory");
  std::string content = contentOf(file);
  if (file.filename() != "cgroup.procs") return content;
  std::string live;
  std::istringstream pids(content);
  for (pid_t pid = 0; pids >> pid;) {
    if (isLive(pid)) live += std::to_string(pid) + "\n";
  }
  return live;
}

Result<void> FakeCgroupFs::write(const fs::path& file, std::string_view value) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    writes_.emplace_back(file, std::string(value));
  }
  if (!fs::is_regular_file(file)) return kernelError(file, "No such file or directory");
  const std::string name = file.filename().string();
  if (name == "cgroup.subtree_control") return writeSubtreeControl(file, value);
  if (name == "cgroup.kill") return value == "1" ? killAll(file.parent_path()) : kernelError(file, "Invalid argument");
  if (name == "cgroup.procs") return join(file, value);
  if (name == "cpuset.cpus" || name == "cpuset.mems") {
    if (Result<void> valid = checkCpuset(file, value); !valid.ok()) return valid;
  }
  if (name == "devices.allow" || name == "devices.deny") return writeDeviceRule(file, value);
  if (name == "cpu.max" || name == "cpu.cfs_quota_us" || name == "cpu.cfs_period_us") {
    if (Result<void> valid = checkCpuQuota(file, value); !valid.ok()) return valid;
  }
  if (name == "memory.max" || name == "memory.swap.max" || name == "pids.max" || name == "memory.limit_in_bytes" ||
      name == "memory.memsw.limit_in_bytes") {
    std::string text(value);
    bool number = !text.empty() && text.size() < 20 && text.find_first_not_of("0123456789") == std::string::npos;
    bool v2Style = name == "memory.max" || name == "memory.swap.max" || name == "pids.max";
    if (!number && !(v2Style && text == "max")) return kernelError(file, "Invalid argument");
    if (number && name.rfind("memory.", 0) == 0 && hierarchyOf(file) == Hierarchy::V1Memory) {
      if (Result<void> ordered = checkMemoryOrder(file, std::stoull(text)); !ordered.ok()) return ordered;
    }
  }
  createFile(file, std::string(value) + "\n");
  return {};
}

Result<void> FakeCgroupFs::writeSubtreeControl(const fs::path& file, std::string_view value) {
  std::set<std::string> available = words(contentOf(file.parent_path() / "cgroup.controllers"));
  std::set<std::string> enabled = words(contentOf(file));
  for (const std::string& word : words(std::string(value))) {
    std::string controller = word.substr(1);
    if ((word[0] != '+' && word[0] != '-') || !available.count(controller)) return kernelError(file, "No such file or directory");
    if (word[0] == '+') {
      enabled.insert(controller);
    } else {
      enabled.erase(controller);
    }
  }
  createFile(file, joinWords(enabled));
  return {};
}

Result<void> FakeCgroupFs::killAll(const fs::path& dir) {
  for (const fs::path& child : subdirectories(dir)) (void)killAll(child);
  Result<std::string> procs = read(dir / "cgroup.procs");
  std::istringstream pids(procs.ok() ? *procs : "");
  for (pid_t pid = 0; pids >> pid;) ::kill(pid, SIGKILL);
  return {};
}

Result<void> FakeCgroupFs::join(const fs::path& file, std::string_view value) {
  if (hierarchyOf(file) == Hierarchy::V1Cpuset) {
    for (const char* setting : {"cpuset.cpus", "cpuset.mems"}) {
      if (trim(contentOf(file.parent_path() / setting)).empty()) return kernelError(file, "No space left on device");
    }
  }
  std::ofstream(file, std::ios::app) << value << "\n";
  return {};
}

// The v1 kernel keeps memory.memsw.limit_in_bytes >= memory.limit_in_bytes at all times.
Result<void> FakeCgroupFs::checkMemoryOrder(const fs::path& file, std::uint64_t value) const {
  fs::path memsw = file.parent_path() / "memory.memsw.limit_in_bytes";
  if (!fs::exists(memsw)) return {};
  bool settingMemsw = file.filename() == "memory.memsw.limit_in_bytes";
  std::uint64_t other = std::stoull(trim(contentOf(settingMemsw ? file.parent_path() / "memory.limit_in_bytes" : memsw)));
  if (settingMemsw ? value < other : value > other) return kernelError(file, "Invalid argument");
  return {};
}

// devices.deny "a" empties the list; devices.allow adds one "<type> <major>:<minor> <access>".
Result<void> FakeCgroupFs::writeDeviceRule(const fs::path& file, std::string_view value) {
  fs::path list = file.parent_path() / "devices.list";
  std::string rule(value);
  if (rule == "a") {
    createFile(list, file.filename() == "devices.deny" ? "" : "a *:* rwm\n");
    return {};
  }
  std::istringstream parts(rule);
  std::string type, numbers, access, extra;
  parts >> type >> numbers >> access;
  auto number = [](const std::string& text) {
    return text == "*" || (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos);
  };
  std::size_t colon = numbers.find(':');
  bool wellFormed = (type == "c" || type == "b") && colon != std::string::npos && number(numbers.substr(0, colon)) &&
                    number(numbers.substr(colon + 1)) && !access.empty() &&
                    access.find_first_not_of("rwm") == std::string::npos && !(parts >> extra);
  if (!wellFormed || file.filename() != "devices.allow") return kernelError(file, "Invalid argument");
  std::ofstream(list, std::ios::app) << rule << "\n";
  return {};
}

// The kernel's CFS bounds: a period of 1 ms to 1 s, a quota of 1 ms or more, or none
// (v1 -1, v2 "max"); v2 writes both as "<quota> <period>".
Result<void> FakeCgroupFs::checkCpuQuota(const fs::path& file, std::string_view value) const {
  auto micros = [](const std::string& text) -> long long {
    bool number = !text.empty() && text.size() < 18 && text.find_first_not_of("0123456789") == std::string::npos;
    return number ? std::stoll(text) : -2;
  };
  const std::string name = file.filename().string();
  std::istringstream parts{std::string(value)};
  std::string quota, period, extra;
  if (name == "cpu.cfs_period_us") {
    period = std::string(value);
  } else if (name == "cpu.cfs_quota_us") {
    quota = std::string(value);
  } else {
    parts >> quota >> period;
    if (period.empty() || (parts >> extra)) return kernelError(file, "Invalid argument");
  }
  const bool quotaOk = quota.empty() || quota == (name == "cpu.max" ? "max" : "-1") || micros(quota) >= 1000;
  const bool periodOk = period.empty() || (micros(period) >= 1000 && micros(period) <= 1000000);
  if (!quotaOk || !periodOk) return kernelError(file, "Invalid argument");
  return {};
}

// The kernel refuses CPUs or nodes the machine (here: the options) does not have.
Result<void> FakeCgroupFs::checkCpuset(const fs::path& file, std::string_view value) const {
  std::set<int> requested;
  std::set<int> available;
  bool cpus = file.filename() == "cpuset.cpus";
  if (!parseCpuList(std::string(value), requested) || !parseCpuList(cpus ? options_.cpus : options_.mems, available) ||
      !std::includes(available.begin(), available.end(), requested.begin(), requested.end())) {
    return kernelError(file, "Invalid argument");
  }
  return {};
}

Result<void> FakeCgroupFs::makeDir(const fs::path& dir) {
  if (fs::is_directory(dir)) return {};
  if (!fs::is_directory(dir.parent_path())) return fail(ErrorCode::Internal, dir.string() + ": No such file or directory");
  fs::create_directory(dir);
  createFile(dir / "cgroup.procs", "");
  switch (hierarchyOf(dir)) {
    case Hierarchy::V1Memory:
      createFile(dir / "tasks", "");
      createFile(dir / "memory.limit_in_bytes", "9223372036854771712\n");
      createFile(dir / "memory.usage_in_bytes", "0\n");
      if (options_.swapAccounting) createFile(dir / "memory.memsw.limit_in_bytes", "9223372036854771712\n");
      break;
    case Hierarchy::V1Pids:
      createFile(dir / "tasks", "");
      createFile(dir / "pids.max", "max\n");
      createFile(dir / "pids.current", "0\n");
      break;
    case Hierarchy::V1Devices:  // a child starts with its parent's list
      createFile(dir / "tasks", "");
      createFile(dir / "devices.allow", "");
      createFile(dir / "devices.deny", "");
      createFile(dir / "devices.list", contentOf(dir.parent_path() / "devices.list"));
      break;
    case Hierarchy::V1Cpu:
      createFile(dir / "tasks", "");
      createFile(dir / "cpu.cfs_quota_us", "-1\n");
      createFile(dir / "cpu.cfs_period_us", "100000\n");
      break;
    case Hierarchy::V1Cpuset:
      createFile(dir / "tasks", "");
      createFile(dir / "cpuset.cpus", "\n");
      createFile(dir / "cpuset.mems", "\n");
      break;
    case Hierarchy::V2: {
      std::string handedDown = contentOf(dir.parent_path() / "cgroup.subtree_control");
      createFile(dir / "cgroup.controllers", handedDown);
      createFile(dir / "cgroup.subtree_control", "");
      createFile(dir / "cgroup.events", "populated 0\nfrozen 0\n");
      if (options_.cgroupKill) createFile(dir / "cgroup.kill", "");
      std::set<std::string> controllers = words(handedDown);
      if (controllers.count("cpuset")) {
        createFile(dir / "cpuset.cpus", "\n");
        createFile(dir / "cpuset.mems", "\n");
        createFile(dir / "cpuset.cpus.effective", options_.cpus + "\n");
      }
      if (controllers.count("memory")) {
        createFile(dir / "memory.max", "max\n");
        createFile(dir / "memory.current", "0\n");
        if (options_.swapAccounting) createFile(dir / "memory.swap.max", "max\n");
      }
      if (controllers.count("cpu")) createFile(dir / "cpu.max", "max 100000\n");
      if (controllers.count("pids")) {
        createFile(dir / "pids.max", "max\n");
        createFile(dir / "pids.current", "0\n");
      }
      break;
    }
  }
  return {};
}

Result<void> FakeCgroupFs::removeDir(const fs::path& dir) {
  if (!fs::is_directory(dir)) return {};
  Result<std::string> procs = read(dir / "cgroup.procs");
  if (!subdirectories(dir).empty() || (procs.ok() && !trim(*procs).empty())) {
    return fail(ErrorCode::Conflict, "removing " + dir.string() + ": Device or resource busy");
  }
  fs::remove_all(dir);  // the kernel's control files go with the directory
  return {};
}

std::vector<fs::path> FakeCgroupFs::subdirectories(const fs::path& dir) const {
  std::vector<fs::path> children;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.is_directory()) children.push_back(entry.path());
  }
  std::sort(children.begin(), children.end());
  return children;
}

}  // namespace bai::test
