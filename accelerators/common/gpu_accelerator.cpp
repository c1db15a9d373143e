#include "gpu_accelerator.hpp"

#include "cdi_spec.hpp"
#include "device_nodes.hpp"
#include "nvidia_driver_files.hpp"
#include "nvidia_nodes.hpp"
#include "session_document.hpp"
#include "text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <utility>

namespace bai::nvml {

using accel::failInput;
using nlohmann::json;

namespace {

constexpr const char* kCdiKind = "nvidia.com/gpu";

// A decimal from the host: text, a JSON integer or a JSON number.
Result<Quantity> amountOf(const json& value) {
  if (value.is_string()) return Quantity::parse(value.get<std::string>());
  if (value.is_number_integer()) return Quantity(value.get<std::int64_t>());
  if (value.is_number_float()) return Quantity::fromDouble(value.get<double>());
  return fail(ErrorCode::InvalidArgument, "not a decimal");
}

// A GPU or a slice of it: on the GPU's board, so at its PCI bus and NUMA node.
GpuDevice onBoard(const Gpu& gpu, std::string id, std::string uuid, std::string model,
                  std::optional<std::uint64_t> memory, nvmlDevice_t handle) {
  GpuDevice device;
  device.id = std::move(id);
  device.uuid = std::move(uuid);
  device.model = std::move(model);
  device.pciBus = gpu.pciBus;
  device.numaNode = gpu.numaNode;
  device.memory = memory;
  device.handle = handle;
  return device;
}

}  // namespace

GpuAccelerator::GpuAccelerator(const plugin::Host& host, std::string_view configJson)
    : GpuAccelerator(host, "cuda-device", parseGpuConfig(configJson), {GpuSlot{kDeviceSlot, false, false, {}}}, 1) {
  discover([](const Gpu&) { return GpuOffer{}; });
}

GpuAccelerator::GpuAccelerator(const plugin::Host& host, std::string plugin, const GpuConfig& config,
                               std::vector<GpuSlot> slots, Quantity quantum)
    : host_(host),
      plugin_(std::move(plugin)),
      config_(config),
      quantum_(quantum),
      health_(host_, plugin_, config_.criticalXids, config_.xidRecovery),
      slots_(std::move(slots)) {}

GpuAccelerator::~GpuAccelerator() = default;

// ---- Discovery ---------------------------------------------------------------------------

std::vector<Gpu> GpuAccelerator::discover(const OfferChooser& chooseOffer) {
  std::vector<Gpu> gpus;
  readCdiSpecs();
  if (auto library = Library::open(config_.nvmlLibrary); !library) {
    noDeviceReason_ = library.error().message;
  } else {
    nvml_ = std::move(*library);
    for (const std::string& name : nvml_->missingOptional()) {
      host_.info(plugin_ + ": NVML lacks " + name + ": that feature is off");
    }
    driverVersion_ = nvml_->driverVersion();
    const std::string libraryDir = std::filesystem::path(nvml_->loadedFrom()).parent_path().string();
    driverFiles_ = nvidiaDriverFiles(libraryDir, driverVersion_, config_.driverBinaryDirs);
    std::vector<std::string> skipped;
    auto found = nvml_->discover(config_.sysfsRoot, skipped);
    if (!found) {
      noDeviceReason_ = found.error().message;
    } else {
      gpus = std::move(*found);
      for (const std::string& why : skipped) host_.warning(plugin_ + ": skipped " + why);
      countAtCreate_ = static_cast<unsigned>(gpus.size());
      for (const Gpu& gpu : gpus) addGpu(gpu, chooseOffer);
      for (const std::string& entry : config_.deviceMask) {
        bool used = std::find(maskedDevices_.begin(), maskedDevices_.end(), entry) != maskedDevices_.end();
        if (!used) host_.warning(plugin_ + ": device_mask entry \"" + entry + "\" matches no GPU or MIG slice");
      }
      if (gpus.empty()) noDeviceReason_ = skipped.empty() ? "NVML reports no GPU" : "no GPU answers: " + skipped.front();
      else if (devices_.empty()) noDeviceReason_ = "every GPU is masked by device_mask";
      eventsStatus_ = health_.watch(*nvml_);
    }
  }
  inUse_.assign(devices_.size(), Quantity());
  if (!noDeviceReason_.empty()) {
    host_.warning(plugin_ + ": no GPUs: " + noDeviceReason_);
  } else {
    host_.info(plugin_ + ": " + std::to_string(devices_.size()) + " GPUs and MIG slices through " + config_.nvmlLibrary);
  }
  return gpus;
}

// A broken spec is the node admin's to fix; it must not cost the node its GPUs.
void GpuAccelerator::readCdiSpecs() {
  accel::CdiScan scan = accel::scanCdiSpecs(config_.cdiSpecDirs, kCdiKind);
  for (const std::string& problem : scan.problems) host_.warning(plugin_ + ": CDI spec " + problem + ": ignored");
  cdiNames_ = std::move(scan.deviceNames);
  cdiSpecFiles_ = std::move(scan.specFiles);
  if (!cdiSpecFiles_.empty()) {
    host_.info(plugin_ + ": container sessions get CDI devices of " + accel::joined(cdiSpecFiles_, ", "));
  }
}

std::string GpuAccelerator::cdiNameOf(const std::vector<std::string>& names) const {
  for (const std::string& name : names) {
    if (cdiNames_.count(name) != 0) return std::string(kCdiKind) + "=" + name;
  }
  if (!cdiSpecFiles_.empty()) {
    host_.warning(plugin_ + ": " + names.front() + " is not in the CDI specs: its container sessions get its nodes and the driver's files instead");
  }
  return "";
}

std::size_t GpuAccelerator::addDevice(GpuDevice device) {
  const std::size_t index = devices_.size();
  health_.add(device.id, device.uuid, device.handle, device.parent);
  deviceById_.emplace(device.id, index);
  if (GpuSlot* slot = findSlot(device.slot)) slot->devices.push_back(index);
  devices_.push_back(std::move(device));
  return index;
}

void GpuAccelerator::addGpu(const Gpu& gpu, const OfferChooser& chooseOffer) {
  const std::string index = std::to_string(gpu.index);
  for (const std::string& entry : config_.deviceMask) {
    if (entry == index || entry == gpu.uuid) maskedDevices_.push_back(entry);
  }
  if (masked(config_.deviceMask, index, gpu.uuid)) return;  // its MIG slices go with it
  GpuDevice device = onBoard(gpu, index, gpu.uuid, gpu.name, gpu.memory, gpu.handle);
  device.cores = gpu.cores;
  const std::vector<std::string> ownNodes = gpuNodes(gpu);
  device.nodes = ownNodes;
  device.migEnabled = gpu.migEnabled;
  if (!gpu.migEnabled) {
    device.cdiName = cdiNameOf({gpu.uuid, index});  // nvidia-ctk names a GPU both ways
    GpuOffer offer = chooseOffer(gpu);
    device.slot = offer.slot;
    device.capacity = offer.capacity;
    const GpuSlot* slot = findSlot(offer.slot);
    device.fraction = slot != nullptr && slot->fraction;
  }
  const std::size_t parent = addDevice(std::move(device));

  for (const MigSlice& slice : gpu.slices) {
    if (masked(config_.deviceMask, slice.uuid, slice.uuid)) {
      maskedDevices_.push_back(slice.uuid);
      continue;
    }
    if (slice.profile.empty()) {
      host_.warning(plugin_ + ": MIG slice " + slice.uuid + " (\"" + slice.name + "\") has no profile in its name: not offered");
      continue;
    }
    const std::string slotName = std::string(kDeviceSlot) + ":" + slice.profile + "-mig";
    if (findSlot(slotName) == nullptr) slots_.push_back(GpuSlot{slotName, true, false, {}});
    GpuDevice sliceDevice = onBoard(gpu, slice.uuid, slice.uuid, slice.name, slice.memory, slice.handle);
    sliceDevice.slot = slotName;
    sliceDevice.parent = parent;
    sliceDevice.migProfile = slice.profile;
    sliceDevice.cdiName = cdiNameOf({slice.uuid, index + ":" + std::to_string(slice.index)});  // "<gpu>:<mig>"
    sliceDevice.nodes = ownNodes;
    addCapabilityNodes(gpu, slice, sliceDevice.nodes);
    addDevice(std::move(sliceDevice));
  }
}

// A node the plugin cannot name is left out: the agent's device fence then keeps the
// session from the device, which fails closed, and the warning says why.
std::vector<std::string> GpuAccelerator::gpuNodes(const Gpu& gpu) const {
  if (!gpu.minor) {
    host_.warning(plugin_ + ": GPU " + gpu.uuid + ": NVML gives no minor number: sessions get no /dev/nvidia node for it");
    return {};
  }
  return {gpuNodePath(config_.devRoot, *gpu.minor)};
}

void GpuAccelerator::addCapabilityNodes(const Gpu& gpu, const MigSlice& slice, std::vector<std::string>& nodes) const {
  if (!gpu.minor) return;  // warned about with the GPU
  if (!slice.instances) {
    host_.warning(plugin_ + ": MIG slice " + slice.uuid + ": NVML gives no instance ids: sessions get no capability nodes for it");
    return;
  }
  auto caps = migCapabilityNodePaths(config_.devRoot, config_.procRoot, *gpu.minor, *slice.instances);
  if (!caps) {
    host_.warning(plugin_ + ": MIG slice " + slice.uuid + ": no capability nodes: " + caps.error().message);
    return;
  }
  nodes.insert(nodes.end(), caps->begin(), caps->end());
}

const GpuSlot* GpuAccelerator::findSlot(std::string_view name) const {
  auto slot = std::find_if(slots_.begin(), slots_.end(), [&](const GpuSlot& s) { return s.name == name; });
  return slot != slots_.end() ? &*slot : nullptr;
}

GpuSlot* GpuAccelerator::findSlot(std::string_view name) {
  return const_cast<GpuSlot*>(std::as_const(*this).findSlot(name));
}

// ---- Identity, devices and health --------------------------------------------------------

void GpuAccelerator::addFacts(json& /*extraInfo*/) const {}
void GpuAccelerator::addDeviceFacts(std::size_t /*index*/, json& /*extra*/) const {}

std::string GpuAccelerator::describe() {
  std::size_t slices = std::count_if(devices_.begin(), devices_.end(), [](const GpuDevice& d) { return d.parent.has_value(); });
  json xids = json::array();
  for (unsigned long long xid : config_.criticalXids) xids.push_back(xid);
  json extra = {{"nvml_library", config_.nvmlLibrary},
                {"nvml_loaded", nvml_ != nullptr},
                {"device_count", devices_.size() - slices},
                {"mig_slice_count", slices},
                {"masked", maskedDevices_},
                {"critical_xids", std::move(xids)},
                {"xid_events", eventsStatus_},
                {"cdi_specs", cdiSpecFiles_},
                {"driver_files", driverFiles_}};
  if (!noDeviceReason_.empty()) extra["reason"] = noDeviceReason_;
  if (driverVersion_) extra["driver_version"] = *driverVersion_;
  if (nvml_) extra["missing_optional_symbols"] = nvml_->missingOptional();
  addFacts(extra);
  return json{{"key", "cuda"}, {"extra_info", std::move(extra)}}.dump();
}

// The devices found at create: health changes are reported by `health`, so this stays fixed.
std::string GpuAccelerator::listDevices() {
  json list = json::array();
  for (std::size_t i = 0; i < devices_.size(); ++i) {
    const GpuDevice& device = devices_[i];
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
    addDeviceFacts(i, extra);
    entry["extra"] = std::move(extra);
    list.push_back(std::move(entry));
  }
  return json{{"devices", std::move(list)}}.dump();
}

std::string GpuAccelerator::slotTypes() {
  json list = json::array();
  for (const GpuSlot& slot : slots_) list.push_back({{"name", slot.name}, {"type", slot.unique ? "unique" : "count"}});
  return json{{"slots", std::move(list)}}.dump();
}

std::string GpuAccelerator::allocMapSpec() {
  json maps = json::array();
  for (const GpuSlot& slot : slots_) {
    json members = json::array();
    for (std::size_t index : slot.devices) {
      members.push_back({{"id", devices_[index].id}, {"capacity", devices_[index].capacity.toString()}});
    }
    json map = {{"slot", slot.name},
                {"kind", slot.fraction ? "fraction" : "discrete"},
                {"strategy", "evenly"},
                {"devices", std::move(members)}};
    if (slot.fraction) map["quantum"] = quantum_.toString();
    maps.push_back(std::move(map));
  }
  // Whole GPUs, shares (cuda-fractional) and MIG slices are views of the same hardware.
  json exclusive = json::array({json::array({"cuda.device", "cuda.shares", "cuda.device:*-mig"})});
  return json{{"exclusive", std::move(exclusive)}, {"maps", std::move(maps)}}.dump();
}

std::string GpuAccelerator::health() {
  if (nvml_) health_.poll(*nvml_, countAtCreate_);
  return json{{"devices", health_.report()}}.dump();
}

// ---- Sessions ----------------------------------------------------------------------------

std::vector<GpuGrant> GpuAccelerator::parseGrants(const json& allocation) const {
  std::vector<GpuGrant> grants;
  for (const auto& [slotName, perDevice] : allocation.items()) {
    const GpuSlot* slot = findSlot(slotName);
    if (slot == nullptr) failInput("allocation: unknown slot \"" + slotName + "\"");
    if (!perDevice.is_object()) failInput("allocation." + slotName + ": expected an object of device amounts");
    std::size_t inSlot = 0;
    for (const auto& [deviceId, value] : perDevice.items()) {
      const std::string where = "allocation." + slotName + "." + deviceId;
      Result<Quantity> amount = amountOf(value);
      if (!amount || !amount->isFinite() || amount->isNegative()) failInput(where + ": expected a non-negative decimal");
      auto device = deviceById_.find(deviceId);
      if (device == deviceById_.end()) failInput(where + ": unknown device \"" + deviceId + "\"");
      if (devices_[device->second].slot != slotName) failInput(where + ": the device is not in this slot");
      if (amount->isZero()) continue;
      if (!slot->fraction && *amount != 1) failInput(where + ": a whole device is \"1\", got " + value.dump());
      if (slot->fraction && amount->raw() % quantum_.raw() != 0) {
        failInput(where + ": " + amount->toString() + " is not a multiple of the quantum " + quantum_.toString());
      }
      ++inSlot;
      grants.push_back({device->second, *amount});
    }
    if (slot->unique && inSlot > 1) failInput("allocation." + slotName + ": a unique slot takes one device");
  }
  std::sort(grants.begin(), grants.end(), [](const GpuGrant& a, const GpuGrant& b) { return a.device < b.device; });
  return grants;
}

void GpuAccelerator::checkFits(const std::vector<GpuGrant>& grants) const {
  for (const GpuGrant& grant : grants) {
    const GpuDevice& device = devices_[grant.device];
    HealthState state = health_.of(grant.device);
    if (state.health != Health::Healthy) {
      throw plugin::StatusError(BAI_ERR_UNAVAILABLE, "device " + device.id + " is " +
                                                         std::string(accel::healthName(state.health)) + ": " + state.reason);
    }
    Quantity free = device.capacity - inUse_[grant.device];
    if (free < grant.amount) {
      failInput("device " + device.id + ": asked " + grant.amount.toString() + " of " + device.slot + ", free " +
                free.toString() + (device.fraction ? "" : " (held by another session)"));
    }
  }
}

json GpuAccelerator::visibilityEnv(const std::vector<std::string>& uuids) {
  const std::string visible = accel::joined(uuids);
  return {{"CUDA_VISIBLE_DEVICES", visible}, {"NVIDIA_VISIBLE_DEVICES", uuids.empty() ? "void" : visible}};
}

// Both forms for a session with GPUs: the nodes (a process session, or a container
// without CDI, with the driver's files mounted) and the CDI names (a container engine
// with the spec injects nodes and files itself).
json GpuAccelerator::sessionResources(const std::vector<GpuGrant>& grants) const {
  std::vector<std::string> uuids;
  for (const GpuGrant& grant : grants) uuids.push_back(devices_[grant.device].uuid);
  json resources = {{"env", visibilityEnv(uuids)}, {"devices", deviceNodes(grants)}, {"mounts", json::array()}};
  if (grants.empty()) return resources;
  if (std::vector<std::string> cdi = cdiDevices(grants); !cdi.empty()) {
    resources["cdi_devices"] = std::move(cdi);
  } else {
    for (const std::string& file : driverFiles_) {
      resources["mounts"].push_back({{"source", file}, {"target", file}, {"read_only", true}});
    }
  }
  return resources;
}

std::vector<std::string> GpuAccelerator::cdiDevices(const std::vector<GpuGrant>& grants) const {
  std::vector<std::string> names;
  for (const GpuGrant& grant : grants) {
    const std::string& name = devices_[grant.device].cdiName;
    if (name.empty()) return {};
    names.push_back(name);
  }
  return names;
}

json GpuAccelerator::deviceNodes(const std::vector<GpuGrant>& grants) const {
  std::vector<std::string> paths;
  auto add = [&](const std::string& path) {
    if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(path);
  };
  for (const GpuGrant& grant : grants) {
    for (const std::string& node : devices_[grant.device].nodes) add(node);
  }
  if (!grants.empty()) {
    for (const std::string& node : controlNodePaths(config_.devRoot)) add(node);
  }
  json devices = json::array();
  for (const std::string& path : paths) devices.push_back(accel::deviceNodeEntry(path));
  return devices;
}

// Every session gets the visibility variables: one that asked for no GPU sees none.
std::string GpuAccelerator::prepareSession(std::string_view sessionJson) {
  accel::SessionDocument session = accel::parseSessionDocument(sessionJson);
  std::vector<GpuGrant> grants = parseGrants(session.allocation);
  if (prepared_.count(session.id) != 0) failInput("session " + session.id + " is prepared already; release it first");
  checkFits(grants);
  json resources = sessionResources(grants);
  for (const GpuGrant& grant : grants) inUse_[grant.device] += grant.amount;
  prepared_.emplace(session.id, std::move(grants));
  return resources.dump();
}

void GpuAccelerator::releaseSession(std::string_view sessionJson) {
  const std::string id = accel::sessionIdOf(sessionJson);
  auto prepared = prepared_.find(id);
  if (prepared == prepared_.end()) {
    throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + id + " is not prepared (or released already)");
  }
  for (const GpuGrant& grant : prepared->second) inUse_[grant.device] -= grant.amount;
  prepared_.erase(prepared);
}

const std::vector<GpuGrant>& GpuAccelerator::preparedGrants(const std::string& sessionId) const {
  auto prepared = prepared_.find(sessionId);
  if (prepared == prepared_.end()) throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + sessionId + " is not prepared");
  return prepared->second;
}

// ---- Measures ----------------------------------------------------------------------------

// Utilisation per GPU (NVML has none per MIG slice), memory used per GPU and slice; gone
// devices and unanswered queries report nothing. Node values are sums, as upstream.
json GpuAccelerator::usageMeasures(const std::vector<std::size_t>& indexes) const {
  json utilization = json::object();
  json memory = json::object();
  unsigned long long utilizationTotal = 0;
  unsigned __int128 memoryTotal = 0;
  for (std::size_t index : indexes) {
    const GpuDevice& device = devices_[index];
    if (!nvml_ || health_.of(index).health == Health::Gone) continue;
    Usage usage = nvml_->usage(device.handle);
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
  json list = json::array();
  list.push_back({{"key", "cuda_util"},
                  {"unit", "percent"},
                  {"value", std::to_string(utilizationTotal)},
                  {"per_device", std::move(utilization)}});
  list.push_back({{"key", "cuda_mem"}, {"unit", "bytes"}, {"value", accel::decimal(memoryTotal)}, {"per_device", std::move(memory)}});
  return list;
}

std::string GpuAccelerator::nodeMeasures() {
  std::vector<std::size_t> all(devices_.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return json{{"measures", usageMeasures(all)}}.dump();
}

json GpuAccelerator::grantMeasures(const std::vector<GpuGrant>& /*grants*/) const { return json::array(); }

std::string GpuAccelerator::sessionMeasures(std::string_view sessionJson) {
  const std::vector<GpuGrant>& grants = preparedGrants(accel::sessionIdOf(sessionJson));
  std::vector<std::size_t> indexes;
  for (const GpuGrant& grant : grants) indexes.push_back(grant.device);
  json list = usageMeasures(indexes);
  for (json& measure : grantMeasures(grants)) list.push_back(std::move(measure));
  return json{{"measures", std::move(list)}}.dump();
}

}  // namespace bai::nvml
