#include "fractional_config.hpp"

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

Quantity quantityValue(const std::string& key, const json& value) {
  Result<Quantity> parsed = value.is_string()               ? Quantity::parse(value.get<std::string>())
                            : value.is_number_integer()     ? Result<Quantity>(Quantity(value.get<std::int64_t>()))
                            : value.is_number_float()       ? Quantity::fromDouble(value.get<double>())
                                                            : Result<Quantity>(Quantity(-1));
  if (!parsed || !parsed->isFinite() || parsed->isNegative() || parsed->isZero()) {
    badKey(key, "a positive decimal", value);
  }
  return *parsed;
}

std::uint64_t positiveInteger(const std::string& key, const json& value) {
  Quantity q = quantityValue(key, value);
  if (!q.isInteger() || q.wholeUnits() > static_cast<__int128>(UINT64_MAX)) badKey(key, "a positive integer", value);
  return static_cast<std::uint64_t>(q.wholeUnits());
}

GpuMode modeValue(const std::string& key, const json& value) {
  if (value == "shares") return GpuMode::Shares;
  if (value == "device") return GpuMode::Device;
  badKey(key, "\"shares\" or \"device\"", value);
}

void parseMps(const json& value, MpsConfig& mps) {
  if (!value.is_object()) badKey("mps", "a table", value);
  for (const auto& [key, item] : value.items()) {
    std::string where = "mps." + key;
    if (key == "manage") {
      if (!item.is_boolean()) badKey(where, "a boolean", item);
      mps.manage = item.get<bool>();
    } else if (key == "control") {
      mps.control = stringValue(where, item);
    } else if (key == "pipe_dir") {
      mps.pipeDir = stringValue(where, item);
    } else if (key == "log_dir") {
      mps.logDir = stringValue(where, item);
    } else {
      throw std::invalid_argument("cuda config: unknown key \"" + where + "\" (known: manage, control, pipe_dir, log_dir)");
    }
  }
}

}  // namespace

FractionalConfig parseFractionalConfig(std::string_view configJson) {
  json config = json::parse(configJson, nullptr, false);
  if (config.is_discarded() || !config.is_object()) throw std::invalid_argument("cuda config: expected a JSON object");
  FractionalConfig result;
  for (const auto& [key, value] : config.items()) {
    bool known = std::any_of(std::begin(kFractionalConfigKeys), std::end(kFractionalConfigKeys),
                             [&](const FractionalConfigKey& k) { return key == k.name; });
    if (!known) {
      std::string names;
      for (const FractionalConfigKey& k : kFractionalConfigKeys) names += (names.empty() ? "" : ", ") + std::string(k.name);
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
    } else if (key == "quantum_size") {
      result.quantum = quantityValue(key, value);
      if (result.quantum > Quantity(1)) badKey(key, "a decimal in (0, 1]", value);
    } else if (key == "unit_mem") {
      result.unitMem = positiveInteger(key, value);
    } else if (key == "unit_proc") {
      result.unitProc = positiveInteger(key, value);
    } else if (key == "default_mode") {
      result.defaultMode = modeValue(key, value);
    } else if (key == "modes") {
      if (!value.is_object()) badKey(key, "a table of GPU index or UUID -> \"shares\" | \"device\"", value);
      for (const auto& [gpu, mode] : value.items()) result.modes[gpu] = modeValue(key + "." + gpu, mode);
    } else if (key == "mps") {
      parseMps(value, result.mps);
    }
  }
  return result;
}

}  // namespace bai::cuda
