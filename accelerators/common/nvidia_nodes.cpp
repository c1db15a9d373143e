#include "nvidia_nodes.hpp"

#include "device_nodes.hpp"

#include <charconv>
#include <fstream>
#include <string_view>

namespace bai::nvml {
namespace {

// The "DeviceFileMinor: 39" line of a capability's access file.
Result<unsigned> deviceFileMinor(const std::string& accessFile) {
  std::ifstream file(accessFile);
  if (!file) return fail(ErrorCode::NotFound, "cannot read " + accessFile);
  constexpr std::string_view kKey = "DeviceFileMinor:";
  for (std::string line; std::getline(file, line);) {
    if (line.compare(0, kKey.size(), kKey) != 0) continue;
    std::size_t at = line.find_first_not_of(' ', kKey.size());
    unsigned minor = 0;
    auto [end, error] = at == std::string::npos ? std::from_chars_result{nullptr, std::errc::invalid_argument}
                                                : std::from_chars(line.data() + at, line.data() + line.size(), minor);
    if (error != std::errc{} || end != line.data() + line.size()) {
      return fail(ErrorCode::InvalidArgument, accessFile + ": unreadable line '" + line + "'");
    }
    return minor;
  }
  return fail(ErrorCode::InvalidArgument, accessFile + ": no DeviceFileMinor line");
}

}  // namespace

std::string gpuNodePath(const std::string& devRoot, unsigned minor) { return devRoot + "/nvidia" + std::to_string(minor); }

std::vector<std::string> controlNodePaths(const std::string& devRoot) {
  std::vector<std::string> paths;
  for (const char* name : {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"}) {
    if (accel::nodeExists(devRoot + "/" + name)) paths.push_back(devRoot + "/" + name);
  }
  return paths;
}

Result<std::vector<std::string>> migCapabilityNodePaths(const std::string& devRoot, const std::string& procRoot,
                                                        unsigned gpuMinor, MigInstances instances) {
  const std::string gi = procRoot + "/driver/nvidia/capabilities/gpu" + std::to_string(gpuMinor) + "/mig/gi" +
                         std::to_string(instances.gpuInstance);
  std::vector<std::string> paths;
  for (const std::string& access : {gi + "/access", gi + "/ci" + std::to_string(instances.computeInstance) + "/access"}) {
    auto minor = deviceFileMinor(access);
    if (!minor) return Failure{minor.error()};
    paths.push_back(devRoot + "/nvidia-caps/nvidia-cap" + std::to_string(*minor));
  }
  return paths;
}

}  // namespace bai::nvml
