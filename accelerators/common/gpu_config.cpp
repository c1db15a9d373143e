#include "gpu_config.hpp"

#include "bounded_json.hpp"

#include <stdexcept>

namespace bai::nvml {

using nlohmann::json;

void badKey(const std::string& key, const std::string& expected, const json& got) {
  throw std::invalid_argument("cuda config: " + key + ": expected " + expected + ", got " + got.dump());
}

std::string stringValue(const std::string& key, const json& value) {
  if (!value.is_string() || value.get<std::string>().empty()) badKey(key, "a non-empty string", value);
  return value.get<std::string>();
}

bool readGpuKey(const std::string& key, const json& value, GpuConfig& config) {
  if (key == "nvml_library") {
    config.nvmlLibrary = stringValue(key, value);
  } else if (key == "sysfs_root") {
    config.sysfsRoot = stringValue(key, value);
  } else if (key == "dev_root") {
    config.devRoot = stringValue(key, value);
  } else if (key == "proc_root") {
    config.procRoot = stringValue(key, value);
  } else if (key == "device_mask") {
    if (!value.is_array()) badKey(key, "a list of GPU indexes or UUIDs", value);
    for (const json& item : value) {
      if (item.is_number_unsigned()) {
        config.deviceMask.push_back(std::to_string(item.get<unsigned long long>()));
      } else if (item.is_string() && !item.get<std::string>().empty()) {
        config.deviceMask.push_back(item.get<std::string>());
      } else {
        badKey(key + "[]", "a GPU index or UUID", item);
      }
    }
  } else if (key == "cdi_spec_dirs" || key == "driver_binary_dirs") {
    if (!value.is_array()) badKey(key, "a list of directories", value);
    std::vector<std::string> dirs;
    for (const json& item : value) {
      if (!item.is_string() || item.get<std::string>().empty() || item.get<std::string>().front() != '/') {
        badKey(key + "[]", "an absolute path", item);
      }
      dirs.push_back(item.get<std::string>());
    }
    (key == "cdi_spec_dirs" ? config.cdiSpecDirs : config.driverBinaryDirs) = std::move(dirs);
  } else if (key == "xid_recovery_seconds") {
    if (!value.is_number() || value.get<double>() < 0) badKey(key, "a number of seconds, 0 or more", value);
    config.xidRecovery = std::chrono::milliseconds(static_cast<long long>(value.get<double>() * 1000.0));
  } else if (key == "critical_xids") {
    if (!value.is_array()) badKey(key, "a list of XID numbers", value);
    config.criticalXids.clear();
    for (const json& item : value) {
      if (!item.is_number_unsigned()) badKey(key + "[]", "a non-negative integer", item);
      config.criticalXids.insert(item.get<unsigned long long>());
    }
  } else {
    return false;
  }
  return true;
}

json configObject(std::string_view configJson, std::span<const plugin::ConfigKey> pluginKeys) {
  json config = bai::internal::parseBoundedJson(configJson).document;  // null when refused
  if (!config.is_object()) throw std::invalid_argument("cuda config: expected a JSON object");
  for (const auto& [key, value] : config.items()) {
    if (plugin::findConfigKey(kGpuConfigKeys, key) != nullptr || plugin::findConfigKey(pluginKeys, key) != nullptr) continue;
    std::string names = plugin::configKeyNames(kGpuConfigKeys);
    if (!pluginKeys.empty()) names += ", " + plugin::configKeyNames(pluginKeys);
    throw std::invalid_argument("cuda config: unknown key \"" + key + "\" (known: " + names + ")");
  }
  return config;
}

GpuConfig parseGpuConfig(std::string_view configJson) {
  const json config = configObject(configJson);  // kept: items() views it
  GpuConfig result;
  for (const auto& [key, value] : config.items()) readGpuKey(key, value, result);
  return result;
}

}  // namespace bai::nvml
