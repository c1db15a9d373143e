// The settings of the cuda-device plugin: the agent's [plugins.cuda] table as JSON.
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace bai::cuda {

struct ConfigKey {
  const char* name;
  const char* type;
  const char* defaultValue;
  const char* description;
};

// Every key the plugin reads, declared once: parsing and the README follow this table.
inline constexpr ConfigKey kConfigKeys[] = {
    {"nvml_library", "string", "\"libnvidia-ml.so.1\"", "path or soname of NVML, dlopen-ed at create"},
    {"device_mask", "list of strings or integers", "[]", "GPUs to hide, by NVML index or UUID (a MIG slice by its UUID)"},
    {"sysfs_root", "string", "\"/sys\"", "where <root>/bus/pci/devices/<bus>/numa_node is read"},
    {"critical_xids", "list of integers", "[48, 63, 64, 74, 79, 94, 95]", "XIDs that make a GPU unhealthy"},
    {"xid_recovery_seconds", "number", "300", "an unhealthy GPU with no critical XID for this long that still answers returns to service; 0: never"},
};

struct CudaConfig {
  std::string nvmlLibrary = "libnvidia-ml.so.1";
  std::vector<std::string> deviceMask;
  std::string sysfsRoot = "/sys";
  std::set<unsigned long long> criticalXids = {48, 63, 64, 74, 79, 94, 95};
  std::chrono::milliseconds xidRecovery{300000};
};

// Throws std::invalid_argument naming the key for an unknown key or a wrong type.
CudaConfig parseCudaConfig(std::string_view configJson);

}  // namespace bai::cuda
