#include "session.hpp"

#include "bounded_json.hpp"
#include "json_quantity.hpp"

#include <bai/plugin.hpp>

#include <algorithm>

namespace bai::cpu {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& why) {
  throw plugin::StatusError(BAI_ERR_INVALID_ARGUMENT, "session: " + why);
}

json parseDocument(std::string_view sessionJson) {
  internal::BoundedJson parsed = internal::parseBoundedJson(sessionJson);
  if (!parsed) invalid("not a JSON object (" + parsed.error + ")");
  json session = std::move(parsed.document);
  if (!session.is_object()) invalid("not a JSON object");
  const auto id = session.find("session_id");
  if (id == session.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
    invalid("\"session_id\" must be a non-empty string");
  }
  const auto allocation = session.find("allocation");
  if (allocation == session.end() || !allocation->is_object()) invalid("\"allocation\" must be an object");
  return session;
}

// A positive whole amount no larger than `capacity`.
Quantity checkedAmount(const std::string& slot, const std::string& device, const json& amount, Quantity capacity) {
  const std::string where = "allocation of " + slot + " on device '" + device + "': ";
  const std::optional<Quantity> value = quantityFromJson(amount);
  if (!value) invalid(where + amount.dump() + " is not a quantity");
  if (value->isZero() || !value->isInteger()) invalid(where + amount.dump() + " is not a positive whole number");
  if (*value > capacity) invalid(where + amount.dump() + " exceeds the capacity " + capacity.toString());
  return *value;
}

void addCpus(SessionResources& resources, const json& devices, const CpuInventory& inventory) {
  for (const auto& [id, amount] : devices.items()) {
    const ProcessingUnit* pu = inventory.findPu(id);
    if (pu == nullptr) invalid("unknown cpu device '" + id + "'");
    checkedAmount("cpu", id, amount, inventory.puCapacity);
    resources.cpus.push_back(pu->osIndex);
  }
}

void addMemory(SessionResources& resources, const json& devices, const CpuInventory& inventory) {
  for (const auto& [id, amount] : devices.items()) {
    const MemoryNode* node = inventory.findMemory(id);
    if (node == nullptr) invalid("unknown mem device '" + id + "'");
    resources.memory += checkedAmount("mem", id, amount, node->capacity);
    if (node->numaNode >= 0) resources.memoryNodes.push_back(static_cast<unsigned>(node->numaNode));
  }
}

void sortUnique(std::vector<unsigned>& values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
}

}  // namespace

SessionResources parseSession(std::string_view sessionJson, const CpuInventory& inventory) {
  const json session = parseDocument(sessionJson);
  SessionResources resources;
  resources.sessionId = session.at("session_id").get<std::string>();
  for (const auto& [slot, devices] : session.at("allocation").items()) {
    if (!devices.is_object()) invalid("allocation of slot '" + slot + "' must be an object");
    if (slot == "cpu") {
      addCpus(resources, devices, inventory);
    } else if (slot == "mem") {
      addMemory(resources, devices, inventory);
    } else {
      invalid("unknown slot '" + slot + "' (this plugin offers cpu and mem)");
    }
  }
  sortUnique(resources.cpus);
  sortUnique(resources.memoryNodes);
  return resources;
}

}  // namespace bai::cpu
