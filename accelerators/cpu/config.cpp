#include "config.hpp"

#include "bounded_json.hpp"
#include "json_quantity.hpp"

#include <bai/plugin.hpp>


namespace bai::cpu {
namespace {

using nlohmann::json;

// Bounds the factors so that bytes times factor stays far inside 128-bit arithmetic.
constexpr Quantity kMaxOvercommit = 1000;

[[noreturn]] void invalid(const std::string& key, const std::string& why) {
  throw plugin::StatusError(BAI_ERR_INVALID_ARGUMENT, "config key '" + key + "': " + why);
}

std::string nonEmptyString(const std::string& key, const json& value) {
  if (!value.is_string() || value.get_ref<const std::string&>().empty()) invalid(key, "expected a non-empty string");
  return value.get<std::string>();
}

Quantity overcommitFactor(const std::string& key, const json& value) {
  const std::optional<Quantity> factor = quantityFromJson(value);
  if (!factor) invalid(key, value.dump() + " is not a non-negative decimal with at most 6 fractional digits");
  if (*factor < 1) invalid(key, value.dump() + " is below 1");
  if (*factor > kMaxOvercommit) invalid(key, value.dump() + " is above " + kMaxOvercommit.toString());
  return *factor;
}

std::string strategy(const std::string& key, const json& value) {
  std::string name = nonEmptyString(key, value);
  if (name != "evenly" && name != "fill") invalid(key, "\"" + name + "\" is neither \"evenly\" nor \"fill\"");
  return name;
}

json parseObject(std::string_view configJson) {
  json config = internal::parseBoundedJson(configJson).document;  // null when refused
  if (!config.is_object()) {
    throw plugin::StatusError(BAI_ERR_INVALID_ARGUMENT, "config is not a JSON object");
  }
  return config;
}

void setTopologySource(CpuConfig& config, TopologySource source, const std::string& key, const json& value) {
  if (config.source != TopologySource::ThisMachine) invalid(key, "topology_xml and synthetic exclude each other");
  config.source = source;
  config.topologyArgument = nonEmptyString(key, value);
}

void applyCpuOvercommit(CpuConfig& config, const std::string& key, const json& value) {
  config.cpuOvercommit = overcommitFactor(key, value);
  if (!config.cpuOvercommit.isInteger()) invalid(key, value.dump() + " is not a whole number: the cpu map is discrete");
}

// Every key the plugin accepts, declared once.
constexpr plugin::ConfigKey kConfigKeys[] = {
    {"topology_xml", "string", "", "path of an hwloc XML topology to use instead of this machine"},
    {"synthetic", "string", "", "an hwloc synthetic topology, e.g. \"numa:2(memory=1GiB) core:4 pu:2\""},
    {"cpu_overcommit", "a whole number >= 1", "1", "capacity of each PU"},
    {"mem_overcommit", "a decimal >= 1", "1", "factor on each NUMA node's memory"},
    {"strategy", "\"evenly\" or \"fill\"", "\"evenly\"", "allocation strategy of the cpu map"},
    {"mem_strategy", "\"evenly\" or \"fill\"", "\"evenly\"", "allocation strategy of the mem map"},
};

// Reads `key`, one of kConfigKeys, into `config`.
void applyKey(CpuConfig& config, const std::string& key, const json& value) {
  if (key == "topology_xml") {
    setTopologySource(config, TopologySource::Xml, key, value);
  } else if (key == "synthetic") {
    setTopologySource(config, TopologySource::Synthetic, key, value);
  } else if (key == "cpu_overcommit") {
    applyCpuOvercommit(config, key, value);
  } else if (key == "mem_overcommit") {
    config.memOvercommit = overcommitFactor(key, value);
  } else if (key == "strategy") {
    config.cpuStrategy = strategy(key, value);
  } else if (key == "mem_strategy") {
    config.memStrategy = strategy(key, value);
  }
}

}  // namespace

std::string CpuConfig::sourceName() const {
  switch (source) {
    case TopologySource::Xml: return "xml:" + topologyArgument;
    case TopologySource::Synthetic: return "synthetic:" + topologyArgument;
    case TopologySource::ThisMachine: break;
  }
  return "this machine";
}

CpuConfig parseConfig(std::string_view configJson) {
  CpuConfig config;
  const json table = parseObject(configJson);
  for (const auto& [key, value] : table.items()) {
    if (plugin::findConfigKey(kConfigKeys, key) == nullptr) {
      invalid(key, "unknown key (known: " + plugin::configKeyNames(kConfigKeys) + ")");
    }
    applyKey(config, key, value);
  }
  return config;
}

}  // namespace bai::cpu
