#include "cuda_config.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iterator>
#include <stdexcept>

namespace bai::cuda {
namespace {

using nlohmann::json;

[[noreturn]] void badKey(const std::string& key, const std::string& expected, const json& got) {
  throw std::invalid_argument("cuda config: " + key + ": expected " + expected + ", got " + got.dump());
}

std::string stringValue(const std::string& key, const json& value) {
  if (!value.is_string() || value.get<std::string>().empty()) badKey(key, "a non-empty string", value);
  return value.get<std::string>();
}

}  // namespace

CudaConfig parseCudaConfig(std::string_view configJson) {
  json config = json::parse(configJson, nullptr, false);
  if (config.is_discarded() || !config.is_object()) throw std::invalid_argument("cuda config: expected a JSON object");
  CudaConfig result;
  for (const auto& [key, value] : config.items()) {
    bool known = std::any_of(std::begin(kConfigKeys), std::end(kConfigKeys),
                             [&](const ConfigKey& k) { return key == k.name; });
    if (!known) {
      std::string names;
      for (const ConfigKey& k : kConfigKeys) names += (names.empty() ? "" : ", ") + std::string(k.name);
      throw std::invalid_argument("cuda config: unknown key \"" + key + "\" (known: " + names + ")");
    }
    if (key == "nvml_library") {
      result.nvmlLibrary = stringValue(key, value);
    } else if (key == "sysfs_root") {
      result.sysfsRoot = stringValue(key, value);
    } else if (key == "device_mask") {
      if (!value.is_array()) badKey(key, "a list of GPU indexes or UUIDs", value);
      for (const json& item : value) {
        if (item.is_number_unsigned()) {
          result.deviceMask.push_back(std::to_string(item.get<unsigned long long>()));
        } else if (item.is_string() && !item.get<std::string>().empty()) {
          result.deviceMask.push_back(item.get<std::string>());
        } else {
          badKey(key + "[]", "a GPU index or UUID", item);
        }
      }
    } else if (key == "xid_recovery_seconds") {
      if (!value.is_number() || value.get<double>() < 0) badKey(key, "a number of seconds, 0 or more", value);
      result.xidRecovery = std::chrono::milliseconds(static_cast<long long>(value.get<double>() * 1000.0));
    } else if (key == "critical_xids") {
      if (!value.is_array()) badKey(key, "a list of XID numbers", value);
      result.criticalXids.clear();
      for (const json& item : value) {
        if (!item.is_number_unsigned()) badKey(key + "[]", "a non-negative integer", item);
        result.criticalXids.insert(item.get<unsigned long long>());
      }
    }
  }
  return result;
}

}  // namespace bai::cuda
