#include "runtime/container_spec_json.hpp"

#include "cpu_list.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>

namespace bai::core {
namespace {

std::optional<std::pair<int, int>> readApiVersion(const std::string& text) {
  const std::size_t dot = text.find('.');
  if (dot == std::string::npos) return std::nullopt;
  int major = 0;
  int minor = 0;
  const char* end = text.data() + text.size();
  auto [majorEnd, majorError] = std::from_chars(text.data(), text.data() + dot, major);
  auto [minorEnd, minorError] = std::from_chars(text.data() + dot + 1, end, minor);
  if (majorError != std::errc() || minorError != std::errc() || majorEnd != text.data() + dot || minorEnd != end) {
    return std::nullopt;
  }
  return std::pair{major, minor};
}

std::string cpuList(const std::vector<int>& ids) {
  std::vector<unsigned> sorted;
  for (int id : ids) {
    if (id >= 0) sorted.push_back(static_cast<unsigned>(id));
  }
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  return internal::formatCpuList(sorted);
}

}  // namespace

bool apiVersionAtLeast(const std::string& have, const std::string& need) {
  const auto held = readApiVersion(have);
  const auto needed = readApiVersion(need);
  return held && needed && *held >= *needed;
}

std::string createApiPrefix(const ContainerSpec& spec, const EngineInfo& engine) {
  const bool dockerCdi = engine.flavor == EngineFlavor::Docker && !spec.cdiDevices.empty();
  return std::string("/v") + (dockerCdi ? kCdiDockerApiVersion : kBaseApiVersion);
}

Result<nlohmann::json> containerSpecJson(const ContainerSpec& spec, const EngineInfo& engine) {
  using nlohmann::json;
  for (const auto& id : spec.cpus) {
    if (id < 0) return fail(ErrorCode::InvalidArgument, "container " + spec.name + ": negative cpu id " + std::to_string(id));
  }
  for (const auto& id : spec.mems) {
    if (id < 0) return fail(ErrorCode::InvalidArgument, "container " + spec.name + ": negative memory node " + std::to_string(id));
  }
  if (spec.image.empty()) return fail(ErrorCode::InvalidArgument, "container " + spec.name + ": no image");

  json body = json::object();
  body["Image"] = spec.image;
  if (!spec.command.empty()) body["Cmd"] = spec.command;
  json env = json::array();
  for (const auto& [key, value] : spec.env) env.push_back(key + "=" + value);
  body["Env"] = std::move(env);
  if (!spec.user.empty()) body["User"] = spec.user;
  if (!spec.workingDir.empty()) body["WorkingDir"] = spec.workingDir;
  body["Labels"] = spec.labels;
  body["AttachStdout"] = true;
  body["AttachStderr"] = true;
  body["Tty"] = spec.tty;
  body["OpenStdin"] = spec.openStdin;
  body["AttachStdin"] = spec.openStdin;
  // Stdin outlives one attach where the engine allows it (Docker; Podman 4.3 only with a tty).
  body["StdinOnce"] = false;

  json host = json::object();
  json binds = json::array();
  for (const auto& bind : spec.binds) {
    binds.push_back(bind.source.string() + ":" + bind.target.string() + (bind.readOnly ? ":ro" : ""));
  }
  host["Binds"] = std::move(binds);
  json devices = json::array();
  for (const auto& device : spec.devices) {
    devices.push_back({{"PathOnHost", device.path.string()},
                       {"PathInContainer", device.path.string()},
                       {"CgroupPermissions", device.access}});
  }
  if (!spec.cdiDevices.empty()) {
    if (engine.flavor == EngineFlavor::Docker) {
      if (!apiVersionAtLeast(engine.apiVersion, kCdiDockerApiVersion)) {
        return fail(ErrorCode::InvalidArgument,
                    "container " + spec.name + ": CDI devices need Docker 25 (API " + kCdiDockerApiVersion +
                        ") or newer; this engine is Docker " + engine.version + " (API " + engine.apiVersion + ")");
      }
      host["DeviceRequests"] = json::array({{{"Driver", "cdi"}, {"DeviceIDs", spec.cdiDevices}}});
    } else {
      // Podman: a CDI name where a device path would be. Measured on Podman 4.3.1: its
      // compatible create drops DeviceRequests without a word (the container would start
      // without its GPUs), while a qualified name in Devices is resolved by the Podmans
      // whose compat layer knows CDI names and refused by older ones at create ("stat
      // nvidia.com/gpu=0: no such file or directory"): a refusal, never a silent loss.
      for (const auto& name : spec.cdiDevices) {
        devices.push_back({{"PathOnHost", name}, {"PathInContainer", name}, {"CgroupPermissions", "rwm"}});
      }
    }
  }
  host["Devices"] = std::move(devices);
  if (!spec.cpus.empty()) host["CpusetCpus"] = cpuList(spec.cpus);
  if (!spec.mems.empty()) host["CpusetMems"] = cpuList(spec.mems);
  if (spec.nanoCpus) host["NanoCpus"] = *spec.nanoCpus;
  if (spec.memoryBytes) host["Memory"] = *spec.memoryBytes;
  if (spec.memorySwapBytes) host["MemorySwap"] = *spec.memorySwapBytes;
  if (spec.pidsLimit) host["PidsLimit"] = *spec.pidsLimit;
  host["CapDrop"] = json::array({"ALL"});
  host["CapAdd"] = spec.capAdd;
  host["SecurityOpt"] = json::array({"no-new-privileges"});
  host["Privileged"] = false;
  host["ReadonlyRootfs"] = spec.readonlyRootfs;
  host["Init"] = spec.init;
  host["NetworkMode"] = spec.networkMode;
  json ulimits = json::array();
  for (const auto& limit : spec.ulimits) ulimits.push_back({{"Name", limit.name}, {"Soft", limit.soft}, {"Hard", limit.hard}});
  host["Ulimits"] = std::move(ulimits);
  if (spec.ociRuntime) host["Runtime"] = *spec.ociRuntime;
  host["RestartPolicy"] = {{"Name", "no"}};
  body["HostConfig"] = std::move(host);
  return body;
}

}  // namespace bai::core
