// The rules a plugin's payloads must follow beyond their JSON schemas (docs/abi/):
// key resolution, unique device ids, the slot prefix rule, maps that match the slots
// and devices. One place, used by the agent's host and by bai-plugin-check alike.
#pragma once

#include "alloc/alloc_map.hpp"
#include "runtime/sandbox_spec.hpp"

#include <bai/result.hpp>
#include <bai/slots.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace bai::core {

struct DeviceInfo {
  std::string id;
  std::string model;
  std::string uuid;
  std::string pciBus;
  int numaNode = -1;
  Quantity memory;
  std::int64_t processingUnits = 0;
  std::string health = "healthy";
  nlohmann::json extra;
};

struct MapSpec {
  SlotName slot;
  SlotType type = SlotType::Count;
  bool fraction = false;
  AllocMapOptions options;
  std::vector<DeviceSpec> devices;  // NUMA nodes filled in from list_devices
};

// What a plugin reported at start, already validated.
struct Discovery {
  std::string key;
  nlohmann::json extraInfo = nlohmann::json::object();
  std::vector<DeviceInfo> devices;
  std::vector<std::pair<SlotName, SlotType>> slots;
  std::vector<MapSpec> maps;
  std::vector<std::vector<std::string>> exclusive;
};

// A device node a plugin's prepare_session names: a path (the form of ABI 1.0) or, since
// ABI 1.1, {"path", "type", "major", "minor", "access"}. Without type and numbers the
// agent reads them from the node itself; with them it checks them against the node.
struct DeviceRequest {
  std::string path;
  std::optional<char> type{};  // with major and minor, or none of the three
  std::optional<std::uint32_t> major{}, minor{};
  std::string access = "rw";  // a subset of "rwm"
};

// The limits keys the agent applies (docs/abi/prepare_session.schema.json names exactly
// these; any other key fails the payload): what each plugin asked, before merging.
struct PayloadLimits {
  std::optional<std::vector<int>> cpus;         // "cpuset": a CPU list such as "0-3,8"
  std::optional<std::vector<int>> mems;         // "mems": NUMA nodes, same syntax
  std::optional<std::uint64_t> memoryBytes;     // "memory": bytes, a decimal string
  std::optional<std::uint64_t> cpuMillis;       // "cpu_quota": CPUs as a decimal string, in thousandths
};

// What a session gets from a plugin's prepare_session.
struct SessionResources {
  std::map<std::string, std::string> env;
  std::vector<DeviceRequest> devices;
  std::vector<BindMount> mounts;
  // CDI device names ("nvidia.com/gpu=GPU-..."), since ABI 1.2: a container runtime
  // passes these to its engine instead of `devices` and `mounts`; a process session
  // ignores them. A plugin sends both forms.
  std::vector<std::string> cdiDevices;
  PayloadLimits limits;
};

// The newest ABI minor whose keys a prepare_session answer uses, and the first such key:
// 2 for cdi_devices or limits.cpu_quota, 1 for a device object, else 0. An agent of an
// older minor refuses the answer, so a plugin must not claim one.
struct PayloadAbi {
  std::uint32_t minor = 0;
  std::string key;
};
PayloadAbi newestAbiUsedBy(const nlohmann::json& prepareAnswer);

// Why `name` is not a CDI device name "vendor.com/class=name"; empty when it is one.
std::string whyNotCdiDeviceName(const std::string& name);

// Reads a schema-valid prepare_session document, and holds it to the rules the schema
// cannot say (type, major and minor together; access a set); errors name the key
// ("devices[2].access: ..."), the caller adds the plugin and the call.
Result<SessionResources> readSessionResources(const nlohmann::json& document);

// Validates `document` against docs/abi/<call>.schema.json (session_measures uses node_measures').
Result<nlohmann::json> parsePayload(const std::string& call, const std::string& text);

// Each reads an already schema-valid document into `discovery`; errors say what rule broke.
Result<void> readDescribe(const std::string& infoKey, const nlohmann::json& document, Discovery& discovery);
Result<void> readDevices(const nlohmann::json& document, Discovery& discovery);
Result<void> readSlotTypes(const nlohmann::json& document, Discovery& discovery);
Result<void> readAllocMapSpec(const nlohmann::json& document, Discovery& discovery);

// "cpu" may offer the intrinsic slots `cpu` and `mem`; every other slot starts with "<key>.".
bool slotBelongsTo(const SlotName& slot, const std::string& key);

// Builds the allocation maps of a discovery.
Result<std::vector<std::unique_ptr<AllocMap>>> buildMaps(const Discovery& discovery);

}  // namespace bai::core
