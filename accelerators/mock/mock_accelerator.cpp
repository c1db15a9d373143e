#include "mock_accelerator.hpp"

#include "session_document.hpp"
#include "text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <thread>

namespace bai::mock {
namespace {

using accel::failInput;
using accel::healthName;
using nlohmann::json;

// A quantity from the host: decimal text, or a JSON integer (exact by nature), never a float.
Quantity amountFromJson(const json& value, const std::string& where) {
  if (value.is_string() || value.is_number_integer()) {
    std::optional<Quantity> amount = parseAmount(value.is_string() ? value.get<std::string>() : value.dump());
    if (amount) return *amount;
  }
  failInput(where + ": expected a non-negative decimal string such as \"0.5\", got " + value.dump());
}

}  // namespace

MockAccelerator::MockAccelerator(const plugin::Host& host, std::string_view configJson)
    : host_(host), createdAt_(std::chrono::steady_clock::now()), config_(loadMockConfig(configJson)) {
  indexSlots();
  enter(Call::Create);
  host_.info("mock: key \"" + config_.key + "\", " + std::to_string(config_.devices.size()) + " devices and slices (" +
             (config_.mode == AllocationMode::Discrete ? "discrete" : "fractional") + ") from " + config_.source);
}

MockAccelerator::~MockAccelerator() {
  const auto& delay = config_.faults.delay[static_cast<std::size_t>(Call::Destroy)];
  if (delay) std::this_thread::sleep_for(*delay);
}

void MockAccelerator::enter(Call call) const {
  const auto& delay = config_.faults.delay[static_cast<std::size_t>(call)];
  if (delay) std::this_thread::sleep_for(*delay);
  if (config_.faults.fail[static_cast<std::size_t>(call)]) {
    throw plugin::StatusError(BAI_ERR_UNAVAILABLE,
                              "mock fault: " + std::string(callName(call)) + " fails by configuration");
  }
}

// The main slot is offered even with no device, so the manager learns its type (but not
// by an unconfigured mock, which simulates nothing); MIG slots exist only where a slice
// of that profile does.
void MockAccelerator::indexSlots() {
  bool discrete = config_.mode == AllocationMode::Discrete;
  if (config_.source != kUnconfigured) {
    slots_.push_back({config_.key + (discrete ? ".device" : ".shares"), false, !discrete, {}});
  }
  for (std::size_t i = 0; i < config_.devices.size(); ++i) {
    const MockDevice& device = config_.devices[i];
    deviceById_.emplace(device.id, i);
    if (device.slot.empty()) continue;  // a GPU in MIG mode: only its slices are allocated
    auto slot = std::find_if(slots_.begin(), slots_.end(), [&](const Slot& s) { return s.name == device.slot; });
    if (slot == slots_.end()) slot = slots_.insert(slots_.end(), Slot{device.slot, true, false, {}});
    slot->devices.push_back(i);
  }
  inUse_.assign(config_.devices.size(), Quantity());
}

const MockAccelerator::Slot* MockAccelerator::findSlot(std::string_view name) const {
  for (const Slot& slot : slots_) {
    if (slot.name == name) return &slot;
  }
  return nullptr;
}

// ---- Health --------------------------------------------------------------------------------

HealthState MockAccelerator::ownHealth(const MockDevice& device,
                                                        std::chrono::nanoseconds elapsed) const {
  const HealthFault& fault = device.fault;
  auto reason = [&](std::string_view fallback) { return fault.reason.empty() ? std::string(fallback) : fault.reason; };
  if (fault.goneAfter && elapsed >= *fault.goneAfter) return {Health::Gone, reason("mock fault: device gone")};
  bool unhealthy = fault.unhealthyAfter && elapsed >= *fault.unhealthyAfter &&
                   !(fault.recoverAfter && elapsed >= *fault.recoverAfter);
  if (unhealthy) return {Health::Unhealthy, reason("mock fault: device unhealthy")};
  return {};
}

// A MIG slice is no better than its GPU.
HealthState MockAccelerator::healthOf(std::size_t index) const {
  auto elapsed = std::chrono::steady_clock::now() - createdAt_;
  const MockDevice& device = config_.devices[index];
  HealthState own = ownHealth(device, elapsed);
  if (!device.parent) return own;
  const MockDevice& gpu = config_.devices[*device.parent];
  HealthState inherited = ownHealth(gpu, elapsed);
  if (inherited.health <= own.health) return own;
  return {inherited.health, "GPU " + gpu.id + ": " + inherited.reason};
}

std::string MockAccelerator::health() {
  enter(Call::Health);
  json devices = json::array();
  for (std::size_t i = 0; i < config_.devices.size(); ++i) {
    HealthState state = healthOf(i);
    json entry = {{"id", config_.devices[i].id}, {"health", healthName(state.health)}};
    if (!state.reason.empty()) entry["reason"] = state.reason;
    devices.push_back(std::move(entry));
  }
  return json{{"devices", std::move(devices)}}.dump();
}

// ---- Identity and devices -----------------------------------------------------------------

std::string MockAccelerator::describe() {
  enter(Call::Describe);
  json attributes = json::object();
  for (const auto& [name, value] : config_.attributes) attributes[name] = value;
  std::size_t slices = std::count_if(config_.devices.begin(), config_.devices.end(),
                                     [](const MockDevice& d) { return d.parent.has_value(); });
  json extra = {
      {"config", config_.source},
      {"mode", config_.mode == AllocationMode::Discrete ? "discrete" : "fractional"},
      {"device_count", config_.devices.size() - slices},
      {"mig_slice_count", slices},
      {"masked", config_.masked},
      {"attributes", std::move(attributes)},
  };
  return json{{"key", config_.key}, {"extra_info", std::move(extra)}}.dump();
}

std::string MockAccelerator::listDevices() {
  enter(Call::ListDevices);
  json devices = json::array();
  for (std::size_t i = 0; i < config_.devices.size(); ++i) {
    const MockDevice& device = config_.devices[i];
    HealthState state = healthOf(i);
    json entry = {{"id", device.id},          {"model", device.model},        {"uuid", device.uuid},
                  {"pci_bus", device.pciBus}, {"numa_node", device.numaNode}, {"health", healthName(state.health)}};
    if (device.memory) entry["memory"] = std::to_string(*device.memory);
    if (device.processingUnits) entry["processing_units"] = *device.processingUnits;
    json extra = json::object();
    if (!device.slot.empty()) extra["slot"] = device.slot;
    if (!device.parent) {
      extra["mig"] = device.migEnabled;
    } else {
      extra["mig_parent"] = config_.devices[*device.parent].id;
      extra["mig_profile"] = device.migProfile;
    }
    entry["extra"] = std::move(extra);
    devices.push_back(std::move(entry));
  }
  return json{{"devices", std::move(devices)}}.dump();
}

std::string MockAccelerator::slotTypes() {
  enter(Call::SlotTypes);
  json slots = json::array();
  for (const Slot& slot : slots_) slots.push_back({{"name", slot.name}, {"type", slot.unique ? "unique" : "count"}});
  return json{{"slots", std::move(slots)}}.dump();
}

std::string MockAccelerator::allocMapSpec() {
  enter(Call::AllocMapSpec);
  json maps = json::array();
  for (const Slot& slot : slots_) {
    json devices = json::array();
    for (std::size_t index : slot.devices) {
      devices.push_back({{"id", config_.devices[index].id}, {"capacity", config_.devices[index].capacity.toString()}});
    }
    json map = {{"slot", slot.name},
                {"kind", slot.fraction ? "fraction" : "discrete"},
                {"strategy", config_.strategy == Strategy::Evenly ? "evenly" : "fill"},
                {"devices", std::move(devices)}};
    if (slot.fraction) map["quantum"] = config_.quantum.toString();
    maps.push_back(std::move(map));
  }
  // Whole GPUs, shares and MIG slices are three views of the same hardware.
  json exclusive =
      json::array({json::array({config_.key + ".device", config_.key + ".shares", config_.key + ".device:*-mig"})});
  return json{{"exclusive", std::move(exclusive)}, {"maps", std::move(maps)}}.dump();
}

// ---- Sessions --------------------------------------------------------------------------------

MockAccelerator::Session MockAccelerator::parseSession(std::string_view sessionJson) const {
  accel::SessionDocument session = accel::parseSessionDocument(sessionJson);
  return {session.id, parseGrants(session.allocation)};
}

// Checks every slot and device of `allocation` against what this instance offers.
std::vector<MockAccelerator::Grant> MockAccelerator::parseGrants(const json& allocation) const {
  std::vector<Grant> grants;
  for (const auto& [slotName, perDevice] : allocation.items()) {
    const Slot* slot = findSlot(slotName);
    if (slot == nullptr) failInput("allocation: unknown slot \"" + slotName + "\"");
    if (!perDevice.is_object()) failInput("allocation." + slotName + ": expected an object of device amounts");
    Quantity total;
    for (const auto& [deviceId, value] : perDevice.items()) {
      std::string where = "allocation." + slotName + "." + deviceId;
      Quantity amount = amountFromJson(value, where);
      auto device = deviceById_.find(deviceId);
      if (device == deviceById_.end()) failInput(where + ": unknown device \"" + deviceId + "\"");
      if (config_.devices[device->second].slot != slotName) failInput(where + ": the device is not in this slot");
      if (amount.isZero()) continue;
      if (!slot->fraction && amount != 1) failInput(where + ": a whole device is \"1\"");
      total += amount;
      grants.push_back({device->second, amount});
    }
    if (slot->unique && total > 1) {
      failInput("allocation." + slotName + ": a unique slot takes one device");
    }
  }
  std::sort(grants.begin(), grants.end(), [](const Grant& a, const Grant& b) { return a.device < b.device; });
  return grants;
}

// Catches an allocator that hands out more than a device has, or a device that is gone.
void MockAccelerator::checkFits(const std::vector<Grant>& grants) const {
  for (const Grant& grant : grants) {
    const MockDevice& device = config_.devices[grant.device];
    Quantity free = device.capacity - inUse_[grant.device];
    if (free < grant.amount) {
      failInput("device " + device.id + ": asked " + grant.amount.toString() + " of " + device.slot + ", free " +
                free.toString());
    }
    if (healthOf(grant.device).health == Health::Gone) {
      throw plugin::StatusError(BAI_ERR_UNAVAILABLE, "device " + device.id + " is gone");
    }
  }
}

// slots_.front() is the main slot: <key>.shares in fractional mode.
bool MockAccelerator::inSharesSlot(const MockDevice& device) const {
  return slots_.front().fraction && device.slot == slots_.front().name;
}

// A share stands for unit_mem bytes and unit_proc SMs (rounded down, at least one SM).
// A grant fits its device (checkFits), so neither exceeds the device's own 64-bit figure.
std::string MockAccelerator::memoryLimit(const Grant& grant) const {
  return std::to_string(static_cast<std::uint64_t>(grant.amount.timesFloor(config_.unitMem)));
}

std::string MockAccelerator::processorLimit(const Grant& grant) const {
  return std::to_string(static_cast<std::int64_t>(std::max<__int128>(1, grant.amount.timesFloor(config_.unitProc))));
}

std::string MockAccelerator::envName(std::string_view suffix) const {
  std::string name = "BAI_MOCK_";
  for (char c : config_.key) {
    name.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return name + "_" + std::string(suffix);
}

// The host calls prepare_session of every plugin for every session, so a session with no
// device of this key still gets BAI_MOCK_<KEY>_DEVICES, empty: it sees no device.
json MockAccelerator::sessionEnv(const std::vector<Grant>& grants) const {
  std::vector<std::string> uuids;
  std::vector<std::string> memLimits;
  std::vector<std::string> procLimits;
  for (const Grant& grant : grants) {
    const MockDevice& device = config_.devices[grant.device];
    uuids.push_back(device.uuid);
    if (!inSharesSlot(device)) continue;
    memLimits.push_back(device.uuid + ":" + memoryLimit(grant));
    procLimits.push_back(device.uuid + ":" + processorLimit(grant));
  }
  json env = {{envName("DEVICES"), accel::joined(uuids)}, {envName("DEVICE_COUNT"), std::to_string(uuids.size())}};
  if (config_.mode == AllocationMode::Fractional) {
    env[envName("MEM_LIMITS")] = accel::joined(memLimits);
    env[envName("PROC_LIMITS")] = accel::joined(procLimits);
  }
  return env;
}

// Path only: the agent reads the node's type and numbers itself, as it does for any
// node a plugin cannot stat. A GPU's MIG slices share its node, listed once.
json MockAccelerator::sessionDevices(const std::vector<Grant>& grants) const {
  json devices = json::array();
  for (const Grant& grant : grants) {
    const std::string& node = config_.devices[grant.device].deviceNode;
    json entry = {{"path", node}};
    if (!node.empty() && std::find(devices.begin(), devices.end(), entry) == devices.end()) devices.push_back(entry);
  }
  return devices;
}

void MockAccelerator::addSessionExtra(json& answer) const {
  if (config_.sessionExtra.empty()) return;
  const json extra = json::parse(config_.sessionExtra);
  if (extra.contains("limits")) answer["limits"].update(extra["limits"]);
  for (const char* list : {"mounts", "devices", "cdi_devices"}) {
    if (!extra.contains(list)) continue;
    if (!answer.contains(list)) answer[list] = json::array();
    answer[list].insert(answer[list].end(), extra[list].begin(), extra[list].end());
  }
}

std::string MockAccelerator::prepareSession(std::string_view sessionJson) {
  enter(Call::PrepareSession);
  Session session = parseSession(sessionJson);
  if (prepared_.count(session.id) != 0) failInput("session " + session.id + " is prepared already; release it first");
  checkFits(session.grants);
  for (const Grant& grant : session.grants) inUse_[grant.device] = inUse_[grant.device] + grant.amount;
  json result = {{"env", sessionEnv(session.grants)},
                 {"devices", sessionDevices(session.grants)},
                 {"mounts", json::array()},
                 {"limits", json::object()}};
  addSessionExtra(result);
  prepared_.emplace(session.id, std::move(session.grants));
  return result.dump();
}

void MockAccelerator::releaseSession(std::string_view sessionJson) {
  enter(Call::ReleaseSession);
  Session session = parseSession(sessionJson);
  auto prepared = prepared_.find(session.id);
  if (prepared == prepared_.end()) {
    throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + session.id + " is not prepared (or released already)");
  }
  for (const Grant& grant : prepared->second) inUse_[grant.device] = inUse_[grant.device] - grant.amount;
  prepared_.erase(prepared);
}

// ---- Measures ------------------------------------------------------------------------------

// Fixed figures from the config, so that tests can expect exact values. Gone devices and
// MIG slices (whose figures belong to their GPU) report nothing.
json MockAccelerator::measures(const std::vector<std::size_t>& devices) const {
  json utilization = json::object();
  json memory = json::object();
  Quantity utilizationTotal;
  Quantity memoryTotal;  // bytes: a sum over 65536 devices may pass 2^64
  for (std::size_t index : devices) {
    const MockDevice& device = config_.devices[index];
    if (device.parent || healthOf(index).health == Health::Gone) continue;
    utilization[device.id] = device.utilization.toString();
    memory[device.id] = std::to_string(device.memoryUsed);
    utilizationTotal += device.utilization;
    memoryTotal += BinarySize(device.memoryUsed).toQuantity();
  }
  json list = json::array();
  list.push_back({{"key", config_.key + "_util"},
                  {"unit", "percent"},
                  {"value", utilizationTotal.toString()},
                  {"per_device", std::move(utilization)}});
  list.push_back({{"key", config_.key + "_mem"},
                  {"unit", "bytes"},
                  {"value", memoryTotal.toString()},
                  {"per_device", std::move(memory)}});
  return json{{"measures", std::move(list)}};
}

std::string MockAccelerator::nodeMeasures() {
  enter(Call::NodeMeasures);
  std::vector<std::size_t> all(config_.devices.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return measures(all).dump();
}

std::string MockAccelerator::sessionMeasures(std::string_view sessionJson) {
  enter(Call::SessionMeasures);
  Session session = parseSession(sessionJson);
  auto prepared = prepared_.find(session.id);
  if (prepared == prepared_.end()) {
    throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + session.id + " is not prepared");
  }
  std::vector<std::size_t> devices;
  for (const Grant& grant : prepared->second) devices.push_back(grant.device);
  return measures(devices).dump();
}

}  // namespace bai::mock
