// The settings both CUDA plugins read ([plugins.cuda] as JSON), declared once: the
// plugins add their own keys on top and share this parsing and its error messages.
#pragma once

#include <bai/plugin.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bai::nvml {

inline constexpr plugin::ConfigKey kGpuConfigKeys[] = {
    {"nvml_library", "string", "\"libnvidia-ml.so.1\"", "path or soname of NVML, dlopen-ed at create"},
    {"device_mask", "list of strings or integers", "[]", "GPUs to hide, by NVML index or UUID (a MIG slice by its UUID)"},
    {"sysfs_root", "string", "\"/sys\"", "where <root>/bus/pci/devices/<bus>/numa_node is read"},
    {"dev_root", "string", "\"/dev\"", "where the GPUs' device nodes are: <root>/nvidia0, <root>/nvidiactl, <root>/nvidia-caps"},
    {"proc_root", "string", "\"/proc\"", "where <root>/driver/nvidia/capabilities (MIG capability minors) is read"},
    {"critical_xids", "list of integers", "[48, 63, 64, 74, 79, 94, 95]", "XIDs that make a GPU unhealthy"},
    {"xid_recovery_seconds", "number", "300",
     "an unhealthy GPU with no critical XID for this long that still answers returns to service; 0: never"},
    {"cdi_spec_dirs", "list of strings", "[\"/etc/cdi\", \"/var/run/cdi\"]",
     "where the CDI specs are read at create; with a nvidia.com/gpu spec, sessions get cdi_devices"},
    {"driver_binary_dirs", "list of strings", "[\"/usr/bin\"]",
     "where nvidia-smi and the MPS binaries are, mounted into containers when no CDI spec names the GPUs"},
};

struct GpuConfig {
  std::string nvmlLibrary = "libnvidia-ml.so.1";
  std::vector<std::string> deviceMask;
  std::string sysfsRoot = "/sys";
  std::string devRoot = "/dev";
  std::string procRoot = "/proc";
  std::set<unsigned long long> criticalXids = {48, 63, 64, 74, 79, 94, 95};
  std::chrono::milliseconds xidRecovery{300000};
  std::vector<std::string> cdiSpecDirs = {"/etc/cdi", "/var/run/cdi"};
  std::vector<std::string> driverBinaryDirs = {"/usr/bin"};
};

// Throws std::invalid_argument("cuda config: <key>: expected ..., got ...").
[[noreturn]] void badKey(const std::string& key, const std::string& expected, const nlohmann::json& got);
std::string stringValue(const std::string& key, const nlohmann::json& value);

// Reads `key` into `config` when it is one of kGpuConfigKeys (true), else leaves it to
// the caller (false). Throws std::invalid_argument naming the key for a wrong value.
bool readGpuKey(const std::string& key, const nlohmann::json& value, GpuConfig& config);

// The config object, or std::invalid_argument for an unknown key: the plugin takes
// kGpuConfigKeys and `pluginKeys`.
nlohmann::json configObject(std::string_view configJson, std::span<const plugin::ConfigKey> pluginKeys = {});

// The config of a plugin that takes kGpuConfigKeys alone (cuda-device).
// Throws std::invalid_argument naming the key for an unknown key or a wrong type.
GpuConfig parseGpuConfig(std::string_view configJson);

}  // namespace bai::nvml
