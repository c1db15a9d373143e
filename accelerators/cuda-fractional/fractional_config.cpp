#include "fractional_config.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iterator>
#include <stdexcept>

namespace bai::cuda {
namespace {

using nlohmann::json;

using nvml::badKey;
using nvml::stringValue;

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
  const json config = nvml::configObject(configJson, kFractionalConfigKeys);  // kept: items() views it
  FractionalConfig result;
  for (const auto& [key, value] : config.items()) {
    if (nvml::readGpuKey(key, value, result)) continue;
    if (key == "quantum_size") {
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
