#include "plugin/payloads.hpp"

#include "cpu_list.hpp"
#include "json_schema.hpp"
#include "parse_json.hpp"
#include "runtime/cgroup_limits.hpp"

#include <bai/accelerator.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>

namespace bai::core {
namespace {

Failure<Error> broken(const std::string& why) { return fail(ErrorCode::InvalidArgument, why); }

Result<Quantity> quantityAt(const nlohmann::json& value, const std::string& where) {
  auto parsed = Quantity::parse(value.get<std::string>());
  if (!parsed) return broken(where + ": " + parsed.error().message);
  return parsed;
}

}  // namespace

Result<nlohmann::json> parsePayload(const std::string& call, const std::string& text) {
  auto parsed = parseJson(text);
  if (!parsed) return broken("returned invalid JSON: '" + text.substr(0, 80) + "' (" + parsed.error().message + ")");
  const nlohmann::json& document = *parsed;
  const std::string schema = call == "session_measures" ? "node_measures" : call;
  if (auto valid = json::abiSchemas().validate(schema, document); !valid) {
    return broken("breaks docs/abi/" + schema + ".schema.json " + valid.error().message);
  }
  return parsed;
}

bool slotBelongsTo(const SlotName& slot, const std::string& key) {
  if (key == "cpu" && (slot.str() == "cpu" || slot.str() == "mem")) return true;
  return slot.str().size() > key.size() + 1 && slot.str().compare(0, key.size() + 1, key + ".") == 0;
}

Result<void> readDescribe(const std::string& infoKey, const nlohmann::json& document, Discovery& discovery) {
  const std::string reported = document["key"];
  if (infoKey == BAI_PLUGIN_KEY_DYNAMIC) {
    if (reported == BAI_PLUGIN_KEY_DYNAMIC) return broken("a dynamic plugin must report its real key");
  } else if (reported != infoKey) {
    return broken("reports key '" + reported + "' but the info record says '" + infoKey + "'");
  }
  discovery.key = reported;
  discovery.extraInfo = document.value("extra_info", nlohmann::json::object());
  return {};
}

Result<void> readDevices(const nlohmann::json& document, Discovery& discovery) {
  std::set<std::string> ids;
  for (const auto& d : document["devices"]) {
    DeviceInfo info;
    info.id = d["id"];
    info.model = d.value("model", "");
    info.uuid = d.value("uuid", "");
    info.pciBus = d.value("pci_bus", "");
    info.numaNode = d.value("numa_node", -1);
    if (d.contains("memory")) {
      auto memory = quantityAt(d["memory"], "device '" + info.id + "': memory");
      if (!memory) return Failure{memory.error()};
      info.memory = *memory;
    }
    info.processingUnits = d.value("processing_units", std::int64_t{0});
    info.health = d.value("health", "healthy");
    info.extra = d.value("extra", nlohmann::json::object());
    if (!ids.insert(info.id).second) return broken("device id '" + info.id + "' appears twice");
    discovery.devices.push_back(std::move(info));
  }
  return {};
}

Result<void> readSlotTypes(const nlohmann::json& document, Discovery& discovery) {
  for (const auto& s : document["slots"]) {
    const SlotName name = SlotName::of(s["name"].get<std::string>());  // the schema checked the syntax
    if (!slotBelongsTo(name, discovery.key)) {
      return broken("slot '" + name.str() + "' does not start with the plugin key '" + discovery.key + ".'");
    }
    for (const auto& [known, type] : discovery.slots) {
      if (known == name) return broken("slot '" + name.str() + "' is listed twice");
    }
    discovery.slots.emplace_back(name, parseSlotType(s["type"].get<std::string>()).value());
  }
  return {};
}

Result<void> readAllocMapSpec(const nlohmann::json& document, Discovery& discovery) {
  std::map<std::string, int> numaOf;
  for (const DeviceInfo& d : discovery.devices) numaOf[d.id] = d.numaNode;
  std::set<std::string> mapped;
  for (const auto& m : document["maps"]) {
    MapSpec map{SlotName::of(m["slot"].get<std::string>()), SlotType::Count, m["kind"] == "fraction", {}, {}};
    const std::string where = "map for '" + map.slot.str() + "'";
    auto declared = std::find_if(discovery.slots.begin(), discovery.slots.end(),
                                 [&](const auto& s) { return s.first == map.slot; });
    if (declared == discovery.slots.end()) return broken(where + ": the slot is not in slot_types");
    if (declared->second == SlotType::Unified) return broken(where + ": unified slots are not allocated and take no map");
    if (!mapped.insert(map.slot.str()).second) return broken(where + ": listed twice");
    // A fraction map's slot is one whose devices sessions share: its type says so, so that
    // the manager packs it. A plugin from before the fraction type declared it a count.
    if (map.fraction && declared->second == SlotType::Count) declared->second = SlotType::Fraction;
    if (!map.fraction && declared->second == SlotType::Fraction) return broken(where + ": a fraction slot takes a fraction map");
    map.type = declared->second;
    map.options.strategy = parseAllocationStrategy(m.value("strategy", "evenly")).value();
    if (m.contains("quantum")) {
      auto quantum = quantityAt(m["quantum"], where + ": quantum");
      if (!quantum) return Failure{quantum.error()};
      map.options.quantum = *quantum;
    }
    map.options.fragmentationGuard = m.value("fragmentation_guard", false);
    if (m.contains("min_free")) {
      auto minFree = quantityAt(m["min_free"], where + ": min_free");
      if (!minFree) return Failure{minFree.error()};
      map.options.minFree = *minFree;
    }
    for (const auto& d : m["devices"]) {
      const std::string id = d["id"];
      auto device = numaOf.find(id);
      if (device == numaOf.end()) return broken(where + ": device '" + id + "' is not in list_devices");
      auto capacity = quantityAt(d["capacity"], where + ": device '" + id + "'");
      if (!capacity) return Failure{capacity.error()};
      map.devices.push_back(DeviceSpec{id, *capacity, device->second});
    }
    discovery.maps.push_back(std::move(map));
  }
  for (const auto& [slot, type] : discovery.slots) {
    if (type != SlotType::Unified && mapped.count(slot.str()) == 0) {
      return broken("slot '" + slot.str() + "' has no allocation map");
    }
  }
  if (document.contains("exclusive")) {
    discovery.exclusive = document["exclusive"].get<std::vector<std::vector<std::string>>>();
  }
  // Building the maps once proves the spec (capacities, quanta) is usable.
  if (auto maps = buildMaps(discovery); !maps) return Failure{maps.error()};
  return {};
}

Result<std::vector<std::unique_ptr<AllocMap>>> buildMaps(const Discovery& discovery) {
  std::vector<std::unique_ptr<AllocMap>> maps;
  for (const MapSpec& spec : discovery.maps) {
    if (spec.fraction) {
      auto map = FractionAllocMap::create(spec.slot, spec.type, spec.devices, spec.options);
      if (!map) return Failure{map.error()};
      maps.push_back(std::move(*map));
    } else {
      auto map = DiscreteAllocMap::create(spec.slot, spec.type, spec.devices, spec.options);
      if (!map) return Failure{map.error()};
      maps.push_back(std::move(*map));
    }
  }
  return maps;
}

}  // namespace bai::core

namespace bai::core {
namespace {

// The caller names the call and the plugin ("plugin mock: prepare_session: limits: ...").
Failure<Error> badPayload(const std::string& why) { return fail(ErrorCode::InvalidArgument, why); }

// "0-3,8" -> {0,1,2,3,8}; the kernel's list syntax, as cpuset.cpus and cpuset.mems take it.
std::optional<std::vector<int>> parseIdList(const std::string& text) {
  const auto ids = internal::parseCpuList(text);
  if (!ids) return std::nullopt;
  return std::vector<int>(ids->begin(), ids->end());
}

// "18446744073709551615" at most; the schema already allows only digits.
std::optional<std::uint64_t> parseBytes(const std::string& text) {
  std::uint64_t bytes = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), bytes);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return bytes;
}

// "0.5" -> 500: CPUs with at most three decimals, at least kMinCpuMillis.
std::optional<std::uint64_t> parseCpuMillis(const std::string& text) {
  const std::size_t dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  std::string fraction = dot == std::string::npos ? "" : text.substr(dot + 1);
  auto digits = [](const std::string& part) { return part.find_first_not_of("0123456789") == std::string::npos; };
  if (whole.empty() || whole.size() > 9 || !digits(whole) || fraction.size() > 3 || !digits(fraction)) return std::nullopt;
  if (dot != std::string::npos && fraction.empty()) return std::nullopt;
  fraction.resize(3, '0');
  return std::stoull(whole) * 1000 + std::stoull(fraction);
}

Result<void> readLimits(const nlohmann::json& limits, PayloadLimits& out) {
  for (const auto& [key, value] : limits.items()) {
    if (key == "cpuset" || key == "mems") {
      auto ids = value.is_string() ? parseIdList(value.get<std::string>()) : std::nullopt;
      if (!ids) return badPayload("limits." + key + ": expected a list such as \"0-3,8\", got " + value.dump());
      (key == "cpuset" ? out.cpus : out.mems) = std::move(*ids);
    } else if (key == "memory") {
      auto bytes = value.is_string() ? parseBytes(value.get<std::string>()) : std::nullopt;
      if (!bytes) return badPayload("limits.memory: expected bytes as a decimal string, got " + value.dump());
      out.memoryBytes = *bytes;
    } else if (key == "cpu_quota") {
      auto millis = value.is_string() ? parseCpuMillis(value.get<std::string>()) : std::nullopt;
      if (!millis) {
        return badPayload("limits.cpu_quota: expected CPUs as a decimal string with at most 3 decimals (\"0.5\"), got " +
                          value.dump());
      }
      if (*millis < kMinCpuMillis) {
        return badPayload("limits.cpu_quota: " + value.get<std::string>() +
                          " is under 0.01 CPUs, the least the kernel's CFS quota (1 ms per 100 ms) and Docker take");
      }
      out.cpuMillis = *millis;
    } else {
      return badPayload("limits: unknown key '" + key + "' (the agent applies cpuset, mems, memory and cpu_quota)");
    }
  }
  return {};
}

std::optional<std::uint32_t> deviceNumber(const nlohmann::json& value) {
  if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::uint64_t>() > 0xffffffffu) {
    return std::nullopt;
  }
  return value.get<std::uint32_t>();
}

// A device as a path (ABI 1.0) or {"path", "type", "major", "minor", "access"} (ABI 1.1).
Result<DeviceRequest> readDevice(const nlohmann::json& device, const std::string& where) {
  if (device.is_string()) {
    DeviceRequest request{device.get<std::string>()};
    if (request.path.empty() || request.path.front() != '/') return badPayload(where + ": expected an absolute path, got " + device.dump());
    return request;
  }
  if (!device.is_object()) return badPayload(where + ": expected a path or an object, got " + device.dump());
  DeviceRequest request;
  for (const auto& [key, value] : device.items()) {
    const std::string at = where + "." + key;
    if (key == "path") {
      if (!value.is_string() || value.get<std::string>().empty() || value.get<std::string>().front() != '/') {
        return badPayload(at + ": expected an absolute path, got " + value.dump());
      }
      request.path = value.get<std::string>();
    } else if (key == "type") {
      if (value != "c" && value != "b") return badPayload(at + ": expected \"c\" or \"b\", got " + value.dump());
      request.type = value.get<std::string>().front();
    } else if (key == "major" || key == "minor") {
      auto number = deviceNumber(value);
      if (!number) return badPayload(at + ": expected an integer from 0 to 4294967295, got " + value.dump());
      (key == "major" ? request.major : request.minor) = *number;
    } else if (key == "access") {
      if (!value.is_string() || !isDeviceAccess(value.get<std::string>())) {
        return badPayload(at + ": expected a non-empty subset of \"rwm\", got " + value.dump());
      }
      request.access = value.get<std::string>();
    } else {
      return badPayload(where + ": unknown key '" + key + "' (a device has path, type, major, minor, access)");
    }
  }
  if (request.path.empty()) return badPayload(where + ": missing key 'path'");
  const int numbered = int{request.type.has_value()} + int{request.major.has_value()} + int{request.minor.has_value()};
  if (numbered != 0 && numbered != 3) {
    return badPayload(where + " (" + request.path + "): type, major and minor come together or not at all");
  }
  return request;
}

bool isDomainLabel(std::string_view label) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  return !label.empty() && label.size() <= 63 && alnum(label.front()) && alnum(label.back()) &&
         std::all_of(label.begin(), label.end(), [&](char c) { return alnum(c) || c == '-'; });
}

// A domain name of two labels or more: "nvidia.com", "amd.com".
bool isDomainName(std::string_view name) {
  if (name.find('.') == std::string_view::npos || name.size() > 253) return false;
  for (std::size_t start = 0;;) {
    std::size_t dot = name.find('.', start);
    if (!isDomainLabel(name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool onlyCharacters(std::string_view text, std::string_view punctuation) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || punctuation.find(c) != std::string_view::npos;
  });
}

}  // namespace

PayloadAbi newestAbiUsedBy(const nlohmann::json& prepareAnswer) {
  if (!prepareAnswer.is_object()) return {};
  if (auto cdi = prepareAnswer.find("cdi_devices"); cdi != prepareAnswer.end()) return {2, "cdi_devices"};
  if (auto limits = prepareAnswer.find("limits"); limits != prepareAnswer.end() && limits->is_object() &&
                                                  limits->contains("cpu_quota")) {
    return {2, "limits.cpu_quota"};
  }
  const nlohmann::json devices = prepareAnswer.value("devices", nlohmann::json::array());
  for (std::size_t i = 0; devices.is_array() && i < devices.size(); ++i) {
    if (devices[i].is_object()) return {1, "devices[" + std::to_string(i) + "] (an object)"};
  }
  return {};
}

std::string whyNotCdiDeviceName(const std::string& name) {
  const std::size_t slash = name.find('/');
  const std::size_t equals = name.find('=', slash == std::string::npos ? 0 : slash);
  if (slash == std::string::npos || equals == std::string::npos) return "expected vendor.com/class=name";
  if (!isDomainName(std::string_view(name).substr(0, slash))) return "the vendor '" + name.substr(0, slash) + "' is not a domain name";
  const std::string kind = name.substr(slash + 1, equals - slash - 1);
  if (!onlyCharacters(kind, "_.-")) return "the class '" + kind + "' is not [a-zA-Z0-9_.-]+";
  const std::string device = name.substr(equals + 1);
  if (!onlyCharacters(device, "_.:-")) return "the name '" + device + "' is not [a-zA-Z0-9_.:-]+";
  return "";
}

Result<SessionResources> readSessionResources(const nlohmann::json& document) {
  SessionResources resources;
  resources.env = document.value("env", std::map<std::string, std::string>{});
  const nlohmann::json devices = document.value("devices", nlohmann::json::array());
  for (std::size_t i = 0; i < devices.size(); ++i) {
    auto device = readDevice(devices[i], "devices[" + std::to_string(i) + "]");
    if (!device) return Failure{device.error()};
    resources.devices.push_back(std::move(*device));
  }
  for (const auto& m : document.value("mounts", nlohmann::json::array())) {
    resources.mounts.push_back({m.at("source").get<std::string>(), m.at("target").get<std::string>(),
                                m.value("read_only", false)});
  }
  const nlohmann::json cdiDevices = document.value("cdi_devices", nlohmann::json::array());
  for (std::size_t i = 0; i < cdiDevices.size(); ++i) {
    const std::string where = "cdi_devices[" + std::to_string(i) + "]";
    if (!cdiDevices[i].is_string()) return badPayload(where + ": expected a CDI device name, got " + cdiDevices[i].dump());
    const std::string name = cdiDevices[i].get<std::string>();
    if (std::string why = whyNotCdiDeviceName(name); !why.empty()) return badPayload(where + " (" + name + "): " + why);
    resources.cdiDevices.push_back(name);
  }
  if (auto read = readLimits(document.value("limits", nlohmann::json::object()), resources.limits); !read) {
    return Failure{read.error()};
  }
  return resources;
}

}  // namespace bai::core
