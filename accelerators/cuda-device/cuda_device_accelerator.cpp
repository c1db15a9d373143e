#include "cuda_device_accelerator.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace bai::cuda {
namespace {

using nlohmann::json;

constexpr const char* kDeviceSlot = "cuda.device";

[[noreturn]] void failInput(const std::string& message) {
  throw plugin::StatusError(BAI_ERR_INVALID_ARGUMENT, message);
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ",") + item;
  return text;
}

}  // namespace

CudaDeviceAccelerator::CudaDeviceAccelerator(const plugin::Host& host, std::string_view configJson)
    : host_(host), config_(parseCudaConfig(configJson)), health_(host_, "cuda-device", config_.criticalXids, config_.xidRecovery) {
  slots_.push_back({kDeviceSlot, false, {}});  // offered even with no GPU, so the manager learns its type
  discover();
  inUse_.assign(devices_.size(), false);
  if (!noDeviceReason_.empty()) {
    host_.warning("cuda-device: no GPUs: " + noDeviceReason_);
  } else {
    host_.info("cuda-device: " + std::to_string(devices_.size()) + " GPUs and MIG slices through " + config_.nvmlLibrary);
  }
}

CudaDeviceAccelerator::~CudaDeviceAccelerator() = default;

void CudaDeviceAccelerator::discover() {
  auto library = nvml::Library::open(config_.nvmlLibrary);
  if (!library) {
    noDeviceReason_ = library.error().message;
    return;
  }
  nvml_ = std::move(*library);
  for (const std::string& name : nvml_->missingOptional()) {
    host_.info("cuda-device: NVML lacks " + name + ": that feature is off");
  }
  driverVersion_ = nvml_->driverVersion();
  std::vector<std::string> skipped;
  auto gpus = nvml_->discover(config_.sysfsRoot, skipped);
  if (!gpus) {
    noDeviceReason_ = gpus.error().message;
    return;
  }
  for (const std::string& why : skipped) host_.warning("cuda-device: skipped " + why);
  countAtCreate_ = static_cast<unsigned>(gpus->size());
  for (const nvml::Gpu& gpu : *gpus) addGpu(gpu);
  for (const std::string& entry : config_.deviceMask) {
    bool used = std::find(maskedDevices_.begin(), maskedDevices_.end(), entry) != maskedDevices_.end();
    if (!used) host_.warning("cuda-device: device_mask entry \"" + entry + "\" matches no GPU or MIG slice");
  }
  if (gpus->empty()) noDeviceReason_ = skipped.empty() ? "NVML reports no GPU" : "no GPU answers: " + skipped.front();
  else if (devices_.empty()) noDeviceReason_ = "every GPU is masked by device_mask";

  eventsStatus_ = health_.watch(*nvml_);
}

void CudaDeviceAccelerator::addGpu(const nvml::Gpu& gpu) {
  std::string index = std::to_string(gpu.index);
  for (const std::string& entry : config_.deviceMask) {
    if (entry == index || entry == gpu.uuid) maskedDevices_.push_back(entry);
  }
  if (nvml::masked(config_.deviceMask, index, gpu.uuid)) return;  // its MIG slices go with it
  Device device;
  device.id = index;
  device.uuid = gpu.uuid;
  device.model = gpu.name;
  device.pciBus = gpu.pciBus;
  device.numaNode = gpu.numaNode;
  device.memory = gpu.memory;
  device.cores = gpu.cores;
  device.migEnabled = gpu.migEnabled;
  device.handle = gpu.handle;
  device.slot = gpu.migEnabled ? "" : kDeviceSlot;
  std::size_t parent = devices_.size();
  devices_.push_back(device);
  health_.add(device.id, device.uuid, device.handle, std::nullopt);
  deviceById_.emplace(device.id, parent);
  if (!gpu.migEnabled) slots_.front().devices.push_back(parent);

  for (const nvml::MigSlice& slice : gpu.slices) {
    if (nvml::masked(config_.deviceMask, slice.uuid, slice.uuid)) {
      maskedDevices_.push_back(slice.uuid);
      continue;
    }
    if (slice.profile.empty()) {
      host_.warning("cuda-device: MIG slice " + slice.uuid + " (\"" + slice.name + "\") has no profile in its name: not offered");
      continue;
    }
    Device sliceDevice;
    sliceDevice.id = slice.uuid;
    sliceDevice.uuid = slice.uuid;
    sliceDevice.model = slice.name;
    sliceDevice.pciBus = gpu.pciBus;
    sliceDevice.numaNode = gpu.numaNode;
    sliceDevice.memory = slice.memory;
    sliceDevice.parent = parent;
    sliceDevice.migProfile = slice.profile;
    sliceDevice.handle = slice.handle;
    sliceDevice.slot = std::string(kDeviceSlot) + ":" + slice.profile + "-mig";
    std::size_t at = devices_.size();
    devices_.push_back(sliceDevice);
    health_.add(sliceDevice.id, sliceDevice.uuid, sliceDevice.handle, parent);
    deviceById_.emplace(sliceDevice.id, at);
    auto slot = std::find_if(slots_.begin(), slots_.end(), [&](const Slot& s) { return s.name == sliceDevice.slot; });
    if (slot == slots_.end()) slot = slots_.insert(slots_.end(), Slot{sliceDevice.slot, true, {}});
    slot->devices.push_back(at);
  }
}

const CudaDeviceAccelerator::Slot* CudaDeviceAccelerator::findSlot(std::string_view name) const {
  for (const Slot& slot : slots_) {
    if (slot.name == name) return &slot;
  }
  return nullptr;
}

// ---- Health ------------------------------------------------------------------------------

std::string CudaDeviceAccelerator::health() {
  if (nvml_) health_.poll(*nvml_, countAtCreate_);
  return json{{"devices", health_.report()}}.dump();
}

// ---- Identity and devices ----------------------------------------------------------------

std::string CudaDeviceAccelerator::describe() {
  std::size_t slices = std::count_if(devices_.begin(), devices_.end(), [](const Device& d) { return d.parent.has_value(); });
  json xids = json::array();
  for (unsigned long long xid : config_.criticalXids) xids.push_back(xid);
  json extra = {{"nvml_library", config_.nvmlLibrary},
                {"nvml_loaded", nvml_ != nullptr},
                {"device_count", devices_.size() - slices},
                {"mig_slice_count", slices},
                {"masked", maskedDevices_},
                {"critical_xids", std::move(xids)},
                {"xid_events", eventsStatus_}};
  if (!noDeviceReason_.empty()) extra["reason"] = noDeviceReason_;
  if (driverVersion_) extra["driver_version"] = *driverVersion_;
  if (nvml_) extra["missing_optional_symbols"] = nvml_->missingOptional();
  return json{{"key", "cuda"}, {"extra_info", std::move(extra)}}.dump();
}

// The devices found at create: health changes are reported by `health`, so this stays fixed.
std::string CudaDeviceAccelerator::listDevices() {
  json devices = json::array();
  for (const Device& device : devices_) {
    json entry = {{"id", device.id}, {"uuid", device.uuid}, {"numa_node", device.numaNode}};
    if (!device.model.empty()) entry["model"] = device.model;
    if (!device.pciBus.empty()) entry["pci_bus"] = device.pciBus;
    if (device.memory) entry["memory"] = std::to_string(*device.memory);
    if (device.cores) entry["processing_units"] = *device.cores;
    json extra = json::object();
    if (!device.slot.empty()) extra["slot"] = device.slot;
    if (device.parent) {
      extra["mig_parent"] = devices_[*device.parent].id;
      extra["mig_profile"] = device.migProfile;
    } else {
      extra["mig"] = device.migEnabled;
    }
    entry["extra"] = std::move(extra);
    devices.push_back(std::move(entry));
  }
  return json{{"devices", std::move(devices)}}.dump();
}

std::string CudaDeviceAccelerator::slotTypes() {
  json slots = json::array();
  for (const Slot& slot : slots_) slots.push_back({{"name", slot.name}, {"type", slot.unique ? "unique" : "count"}});
  return json{{"slots", std::move(slots)}}.dump();
}

std::string CudaDeviceAccelerator::allocMapSpec() {
  json maps = json::array();
  for (const Slot& slot : slots_) {
    json devices = json::array();
    for (std::size_t index : slot.devices) devices.push_back({{"id", devices_[index].id}, {"capacity", "1"}});
    maps.push_back({{"slot", slot.name}, {"kind", "discrete"}, {"strategy", "evenly"}, {"devices", std::move(devices)}});
  }
  // Whole GPUs, shares (cuda-fractional) and MIG slices are views of the same hardware.
  json exclusive = json::array({json::array({"cuda.device", "cuda.shares", "cuda.device:*-mig"})});
  return json{{"exclusive", std::move(exclusive)}, {"maps", std::move(maps)}}.dump();
}

// ---- Sessions ----------------------------------------------------------------------------

std::pair<std::string, std::vector<std::size_t>> CudaDeviceAccelerator::parseSession(std::string_view sessionJson) const {
  json session = json::parse(sessionJson, nullptr, false);
  if (session.is_discarded() || !session.is_object()) failInput("the session must be a JSON object");
  auto id = session.find("session_id");
  if (id == session.end() || !id->is_string() || id->get<std::string>().empty()) {
    failInput("session_id: expected a non-empty string");
  }
  auto allocation = session.find("allocation");
  if (allocation == session.end() || !allocation->is_object()) failInput("allocation: expected an object");
  std::vector<std::size_t> granted;
  for (const auto& [slotName, perDevice] : allocation->items()) {
    const Slot* slot = findSlot(slotName);
    if (slot == nullptr) failInput("allocation: unknown slot \"" + slotName + "\"");
    if (!perDevice.is_object()) failInput("allocation." + slotName + ": expected an object of device amounts");
    std::size_t inSlot = 0;
    for (const auto& [deviceId, amount] : perDevice.items()) {
      std::string where = "allocation." + slotName + "." + deviceId;
      auto device = deviceById_.find(deviceId);
      if (device == deviceById_.end()) failInput(where + ": unknown device \"" + deviceId + "\"");
      if (devices_[device->second].slot != slotName) failInput(where + ": the device is not in this slot");
      std::string text = amount.is_string() ? amount.get<std::string>() : amount.dump();
      if (text == "0") continue;
      if (text != "1") failInput(where + ": a whole device is \"1\", got " + amount.dump());
      ++inSlot;
      granted.push_back(device->second);
    }
    if (slot->unique && inSlot > 1) failInput("allocation." + slotName + ": a unique slot takes one device");
  }
  std::sort(granted.begin(), granted.end());
  return {id->get<std::string>(), granted};
}

// Every session gets both variables: one that asked for no GPU gets empty/"void" and sees none.
std::string CudaDeviceAccelerator::prepareSession(std::string_view sessionJson) {
  auto [id, granted] = parseSession(sessionJson);
  if (prepared_.count(id) != 0) failInput("session " + id + " is prepared already; release it first");
  std::vector<std::string> uuids;
  for (std::size_t index : granted) {
    const Device& device = devices_[index];
    nvml::HealthState state = health_.of(index);
    if (state.health != nvml::Health::Healthy) {
      throw plugin::StatusError(BAI_ERR_UNAVAILABLE, "device " + device.id + " is " +
                                                         std::string(nvml::healthName(state.health)) + ": " + state.reason);
    }
    if (inUse_[index]) failInput("device " + device.id + " is held by another session");
    uuids.push_back(device.uuid);
  }
  for (std::size_t index : granted) inUse_[index] = true;
  std::string visible = joined(uuids);
  json env = {{"CUDA_VISIBLE_DEVICES", visible}, {"NVIDIA_VISIBLE_DEVICES", uuids.empty() ? "void" : visible}};
  prepared_.emplace(id, std::move(granted));
  return json{{"env", std::move(env)}, {"devices", json::array()}, {"mounts", json::array()}, {"limits", json::object()}}
      .dump();
}

void CudaDeviceAccelerator::releaseSession(std::string_view sessionJson) {
  json session = json::parse(sessionJson, nullptr, false);
  if (session.is_discarded() || !session.is_object() || !session.contains("session_id") ||
      !session["session_id"].is_string()) {
    failInput("session_id: expected a non-empty string");
  }
  auto prepared = prepared_.find(session["session_id"].get<std::string>());
  if (prepared == prepared_.end()) {
    throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + session["session_id"].get<std::string>() +
                                                     " is not prepared (or released already)");
  }
  for (std::size_t index : prepared->second) inUse_[index] = false;
  prepared_.erase(prepared);
}

// ---- Measures ----------------------------------------------------------------------------

// Utilisation per GPU (NVML has none per MIG slice), memory used per GPU and slice; gone
// devices and unanswered queries report nothing. Node values are sums, as upstream.
json CudaDeviceAccelerator::measures(const std::vector<std::size_t>& devices) const {
  json utilization = json::object();
  json memory = json::object();
  unsigned long long utilizationTotal = 0;
  unsigned __int128 memoryTotal = 0;
  for (std::size_t index : devices) {
    const Device& device = devices_[index];
    if (!nvml_ || health_.of(index).health == nvml::Health::Gone) continue;
    nvml::Usage usage = nvml_->usage(device.handle);
    if (usage.utilizationPercent && !device.parent) {
      utilization[device.id] = std::to_string(*usage.utilizationPercent);
      utilizationTotal += *usage.utilizationPercent;
    }
    // A MIG GPU's memory is its slices' memory: count it once.
    if (usage.memoryUsed && !device.migEnabled) {
      memory[device.id] = std::to_string(*usage.memoryUsed);
      memoryTotal += *usage.memoryUsed;
    }
  }
  std::string memoryText;
  do {
    memoryText.insert(memoryText.begin(), static_cast<char>('0' + static_cast<int>(memoryTotal % 10)));
    memoryTotal /= 10;
  } while (memoryTotal != 0);
  json list = json::array();
  list.push_back({{"key", "cuda_util"},
                  {"unit", "percent"},
                  {"value", std::to_string(utilizationTotal)},
                  {"per_device", std::move(utilization)}});
  list.push_back({{"key", "cuda_mem"}, {"unit", "bytes"}, {"value", memoryText}, {"per_device", std::move(memory)}});
  return json{{"measures", std::move(list)}};
}

std::string CudaDeviceAccelerator::nodeMeasures() {
  std::vector<std::size_t> all(devices_.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return measures(all).dump();
}

std::string CudaDeviceAccelerator::sessionMeasures(std::string_view sessionJson) {
  json session = json::parse(sessionJson, nullptr, false);
  if (session.is_discarded() || !session.is_object() || !session.contains("session_id") ||
      !session["session_id"].is_string()) {
    failInput("session_id: expected a non-empty string");
  }
  auto prepared = prepared_.find(session["session_id"].get<std::string>());
  if (prepared == prepared_.end()) {
    throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + session["session_id"].get<std::string>() + " is not prepared");
  }
  return measures(prepared->second).dump();
}

}  // namespace bai::cuda
