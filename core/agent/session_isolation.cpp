#include "agent/session_isolation.hpp"

#include "runtime/atomic_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <sstream>

namespace bai::core {
namespace {

Failure<Error> refuse(const std::string& plugin, const std::string& why) {
  return fail(ErrorCode::InvalidArgument, "plugin " + plugin + ": " + why);
}

std::string describeNode(char type, std::uint32_t major, std::uint32_t minor) {
  return std::string(1, type) + " " + std::to_string(major) + ":" + std::to_string(minor);
}

Result<DeviceNode> resolveDevice(const std::string& plugin, const DeviceRequest& request, const StatFunction& stat) {
  const std::string where = "device " + request.path;
  struct stat st {};
  if (stat(request.path, st) != 0) {
    return refuse(plugin, where + ": " + std::strerror(errno) + " (the node must exist on this node)");
  }
  if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) return refuse(plugin, where + ": not a device node");
  DeviceNode node{request.path, S_ISCHR(st.st_mode) ? 'c' : 'b', ::major(st.st_rdev), ::minor(st.st_rdev),
                  request.access};
  if (request.type && (*request.type != node.type || *request.major != node.major || *request.minor != node.minor)) {
    return refuse(plugin, where + " is " + describeNode(node.type, node.major, node.minor) + " here, not " +
                              describeNode(*request.type, *request.major, *request.minor) + " as the plugin says");
  }
  return node;
}

// One plugin per limits key: two plugins that both set "cpuset" are a conflict to name,
// not something to merge silently.
template <class T>
Result<void> takeLimit(const std::optional<T>& value, const char* key, const std::string& plugin,
                       std::map<std::string, std::string>& setBy, std::optional<T>& into) {
  if (!value) return {};
  if (auto other = setBy.find(key); other != setBy.end()) {
    return refuse(plugin, std::string("limits.") + key + " is set by plugin " + other->second + " already");
  }
  setBy[key] = plugin;
  into = value;
  return {};
}

void addDevice(std::vector<DeviceNode>& devices, const DeviceNode& node) {
  const bool listed = std::any_of(devices.begin(), devices.end(), [&](const DeviceNode& known) { return known.path == node.path; });
  if (!listed) devices.push_back(node);
}

}  // namespace

StatFunction kernelStat() {
  return [](const std::filesystem::path& path, struct stat& st) { return ::stat(path.c_str(), &st); };
}

Result<Isolation> assembleIsolation(const std::vector<PluginPayload>& payloads, const IsolationSettings& settings,
                                    bool fencesDevices, const StatFunction& stat) {
  Isolation out;
  std::map<std::string, std::string> limitSetBy;
  std::optional<std::vector<int>> cpus, mems;
  std::optional<std::uint64_t> memory, cpuMillis;
  for (const PluginPayload& payload : payloads) {
    const SessionResources& resources = payload.resources;
    // A container gets a plugin's CDI names instead of its nodes and mounts.
    const bool viaCdi = !resources.cdiDevices.empty();
    for (const auto& name : resources.cdiDevices) {
      if (std::find(out.cdiDevices.begin(), out.cdiDevices.end(), name) == out.cdiDevices.end()) out.cdiDevices.push_back(name);
    }
    for (const auto& [name, value] : resources.env) out.env[name] = value;
    for (const DeviceRequest& request : resources.devices) {
      auto node = resolveDevice(payload.plugin, request, stat);
      if (!node) return Failure{node.error()};
      addDevice(out.sandbox.devices, *node);  // e.g. /dev/nvidiactl from two plugins
      if (!viaCdi) addDevice(out.containerDevices, *node);
    }
    for (const BindMount& mount : resources.mounts) {
      struct stat st {};
      if (stat(mount.source, st) != 0) {
        return refuse(payload.plugin, "mount source " + mount.source.string() + ": " + std::strerror(errno));
      }
      out.sandbox.mounts.push_back(mount);
      if (!viaCdi) out.containerMounts.push_back(mount);
    }
    const PayloadLimits& limits = resources.limits;
    for (auto taken : {takeLimit(limits.cpus, "cpuset", payload.plugin, limitSetBy, cpus),
                       takeLimit(limits.mems, "mems", payload.plugin, limitSetBy, mems),
                       takeLimit(limits.memoryBytes, "memory", payload.plugin, limitSetBy, memory),
                       takeLimit(limits.cpuMillis, "cpu_quota", payload.plugin, limitSetBy, cpuMillis)}) {
      if (!taken) return Failure{taken.error()};
    }
  }
  out.limits.cpus = cpus.value_or(std::vector<int>{});
  out.limits.mems = mems.value_or(std::vector<int>{});
  out.limits.memoryBytes = memory.value_or(settings.defaultMemory);
  out.limits.cpuMillis = cpuMillis;
  out.limits.pidsMax = settings.pidsMax;
  out.limits.fenceDevices = true;
  out.limits.devices = baseDeviceRules();
  for (const DeviceNode& node : out.sandbox.devices) out.limits.devices.push_back(ruleFor(node));
  out.sandbox.hidden = settings.hidden;
  out.sandbox.hostNodev = !fencesDevices;
  return out;
}

Result<void> makeWorkDir(const std::filesystem::path& dir, uid_t uid, gid_t gid) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail(ErrorCode::Internal, "work dir " + dir.string() + ": " + std::strerror(errno));
  }
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return fail(ErrorCode::Internal, "work dir " + dir.string() + ": " + std::strerror(errno));
  const bool owned = ::fchown(fd, uid, gid) == 0 && ::fchmod(fd, 0700) == 0;
  const int error = errno;
  ::close(fd);
  if (!owned) return fail(ErrorCode::Internal, "work dir " + dir.string() + ": " + std::strerror(error));
  return {};
}

namespace {

// Whether a passwd or group file has an entry with this name (field 1) or id (field 3).
bool hasEntry(const std::string& text, const std::string& name, std::uint32_t id) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> fields;
    std::istringstream parts(line);
    for (std::string field; std::getline(parts, field, ':');) fields.push_back(field);
    if (fields.size() >= 3 && (fields[0] == name || fields[2] == std::to_string(id))) return true;
  }
  return false;
}

Result<std::filesystem::path> writeWithEntry(const std::filesystem::path& from, const std::filesystem::path& to,
                                             const std::string& name, std::uint32_t id, const std::string& entry) {
  auto host = readWholeFile(from);
  std::string text = host ? *host : std::string();  // a node without the file: the owner's entry alone
  if (!text.empty() && text.back() != '\n') text += '\n';
  if (!hasEntry(text, name, id)) text += entry + "\n";
  if (auto written = writeFileAtomically(to, text); !written) return Failure{written.error()};
  std::error_code ec;
  std::filesystem::permissions(to, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                       std::filesystem::perms::group_read | std::filesystem::perms::others_read, ec);
  if (ec) return fail(ErrorCode::Internal, to.string() + ": " + ec.message());
  return to;
}

}  // namespace

Result<std::vector<BindMount>> writeIdentityFiles(const std::filesystem::path& dir, const protocol::SessionOwner& owner,
                                                  const std::filesystem::path& etc) {
  const std::string uid = std::to_string(owner.uid), gid = std::to_string(owner.gid);
  auto passwd = writeWithEntry(etc / "passwd", dir / "passwd", owner.name, owner.uid,
                               owner.name + ":x:" + uid + ":" + gid + "::" + kSessionHome + ":/bin/sh");
  if (!passwd) return Failure{passwd.error()};
  auto group = writeWithEntry(etc / "group", dir / "group", owner.name, owner.gid, owner.name + ":x:" + gid + ":");
  if (!group) return Failure{group.error()};
  return std::vector<BindMount>{{*passwd, "/etc/passwd", true}, {*group, "/etc/group", true}};
}

Result<void> removeWorkDir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // removes links, never follows them
  if (ec) return fail(ErrorCode::Internal, "removing work dir " + dir.string() + ": " + ec.message());
  return {};
}

}  // namespace bai::core
