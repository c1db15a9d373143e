// The rules a plugin's payloads must follow beyond their JSON schemas (docs/abi/):
// key resolution, unique device ids, the slot prefix rule, maps that match the slots
// and devices. One place, used by the agent's host and by bai-plugin-check alike.
#pragma once

#include "alloc/alloc_map.hpp"

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
