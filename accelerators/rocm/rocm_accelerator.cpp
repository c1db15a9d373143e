#include "rocm_accelerator.hpp"

#include "cdi_spec.hpp"

#include "bounded_json.hpp"
#include "device_nodes.hpp"
#include "session_document.hpp"
#include "text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace bai::rocm {
namespace {

using accel::failInput;
using nlohmann::json;

// Every key of [plugins.rocm], declared once.
constexpr plugin::ConfigKey kConfigKeys[] = {
    {"smi_library", "string", "librocm_smi64.so.1, then /opt/rocm/lib/librocm_smi64.so.{7,6,5}",
              "path or file name of the ROCm SMI library to dlopen (only that one is tried)"},
    {"device_mask", "list of strings or integers", "[]", "SMI indexes or unique ids of GPUs to hide"},
    {"sysfs_root", "string", "/sys", "where PCI devices' render nodes and NUMA nodes are read (tests)"},
    {"dev_root", "string", "/dev", "where the device nodes are: <root>/kfd, <root>/dri/renderD* (tests)"},
    {"cdi_spec_dirs", "list of strings", "[\"/etc/cdi\", \"/var/run/cdi\"]",
     "where the CDI specs are read at create; with an amd.com/gpu spec, sessions get cdi_devices"},
};

constexpr const char* kCdiKind = "amd.com/gpu";

const std::vector<std::string> kDefaultLibraries = {
    "librocm_smi64.so.1",
    "/opt/rocm/lib/librocm_smi64.so.7",
    "/opt/rocm/lib/librocm_smi64.so.6",
    "/opt/rocm/lib/librocm_smi64.so.5",
};

std::string lowered(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string hex64(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%016llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

RocmConfig parseRocmConfig(std::string_view configJson) {
  json config = internal::parseBoundedJson(configJson).document;  // null when refused
  if (!config.is_object()) throw std::invalid_argument("the config must be a JSON object");
  for (const auto& [key, value] : config.items()) {
    if (plugin::findConfigKey(kConfigKeys, key) == nullptr) {
      throw std::invalid_argument("unknown config key \"" + key + "\" (known: " + plugin::configKeyNames(kConfigKeys) + ")");
    }
  }
  RocmConfig result;
  auto text = [&](const char* key, std::string& out) {
    auto value = config.find(key);
    if (value == config.end()) return;
    if (!value->is_string() || value->get<std::string>().empty()) {
      throw std::invalid_argument(std::string(key) + ": expected a non-empty string, got " + value->dump());
    }
    out = value->get<std::string>();
  };
  text("smi_library", result.smiLibrary);
  text("sysfs_root", result.sysfsRoot);
  text("dev_root", result.devRoot);
  if (auto dirs = config.find("cdi_spec_dirs"); dirs != config.end()) {
    if (!dirs->is_array()) throw std::invalid_argument("cdi_spec_dirs: expected a list of directories, got " + dirs->dump());
    result.cdiSpecDirs.clear();
    for (const json& dir : *dirs) {
      if (!dir.is_string() || dir.get<std::string>().empty() || dir.get<std::string>().front() != '/') {
        throw std::invalid_argument("cdi_spec_dirs: expected absolute paths, got " + dir.dump());
      }
      result.cdiSpecDirs.push_back(dir.get<std::string>());
    }
  }
  if (auto mask = config.find("device_mask"); mask != config.end()) {
    if (!mask->is_array()) throw std::invalid_argument("device_mask: expected a list, got " + mask->dump());
    for (const json& entry : *mask) {
      if (entry.is_string() && !entry.get<std::string>().empty()) {
        result.deviceMask.push_back(lowered(entry.get<std::string>()));
      } else if (entry.is_number_unsigned()) {
        result.deviceMask.push_back(std::to_string(entry.get<std::uint64_t>()));
      } else {
        throw std::invalid_argument("device_mask: expected GPU indexes or unique ids, got " + entry.dump());
      }
    }
  }
  return result;
}

RocmAccelerator::RocmAccelerator(const plugin::Host& host, std::string_view configJson)
    : host_(host), config_(parseRocmConfig(configJson)) {
  readCdiSpecs();
  discover();
  if (gpus_.empty()) {
    host_.warning("rocm: no devices: " + reason_);
  } else {
    host_.info("rocm: " + std::to_string(gpus_.size()) + " GPUs through " + smi_->path());
  }
  for (const std::string& entry : unmatchedMask_) {
    host_.warning("rocm: device_mask entry \"" + entry + "\" matches no GPU");
  }
}

// A broken spec is logged and skipped: it must not cost the node its GPUs. AMD's
// container toolkit (amd-ctk cdi generate) names GPUs by their index, as SMI does.
void RocmAccelerator::readCdiSpecs() {
  accel::CdiScan scan = accel::scanCdiSpecs(config_.cdiSpecDirs, kCdiKind);
  for (const std::string& problem : scan.problems) host_.warning("rocm: CDI spec " + problem + ": ignored");
  cdiNames_ = std::move(scan.deviceNames);
  cdiSpecFiles_ = std::move(scan.specFiles);
}

// The granted GPUs' CDI names, or none unless the spec names every one of them.
std::vector<std::string> RocmAccelerator::cdiDevices(const std::vector<std::size_t>& gpus) const {
  std::vector<std::string> names;
  for (std::size_t index : gpus) {
    if (cdiNames_.count(gpus_[index].id) == 0) return {};
    names.push_back(std::string(kCdiKind) + "=" + gpus_[index].id);
  }
  return names;
}

// A missing library, an init error or an SMI failure leaves zero devices and a reason.
void RocmAccelerator::discover() {
  auto smi = RocmSmi::open(config_.smiLibrary.empty() ? kDefaultLibraries : std::vector{config_.smiLibrary});
  if (!smi) {
    reason_ = smi.error().message;
    return;
  }
  smi_ = std::move(*smi);
  auto devices = smi_->devices();
  if (!devices) {
    reason_ = devices.error().message;
    return;
  }
  std::vector<bool> maskUsed(config_.deviceMask.size(), false);
  for (RocmDevice& device : *devices) {
    Gpu gpu{device, std::to_string(device.index), device.uniqueId ? hex64(*device.uniqueId) : "",
            device.bdfid ? RocmSmi::pciBusName(*device.bdfid) : "", {}};
    bool hide = false;
    for (std::size_t i = 0; i < config_.deviceMask.size(); ++i) {
      if (config_.deviceMask[i] == gpu.id || (!gpu.uuid.empty() && config_.deviceMask[i] == gpu.uuid)) {
        maskUsed[i] = true;
        hide = true;
      }
    }
    if (hide) {
      masked_.push_back(gpu.id);
      continue;
    }
    readSysfs(gpu);
    gpuById_.emplace(gpu.id, gpus_.size());
    gpus_.push_back(std::move(gpu));
  }
  for (std::size_t i = 0; i < maskUsed.size(); ++i) {
    if (!maskUsed[i]) unmatchedMask_.push_back(config_.deviceMask[i]);
  }
  inUseBy_.assign(gpus_.size(), "");
  if (gpus_.empty()) {
    reason_ = devices->empty() ? "ROCm SMI (" + smi_->path() + ") reports no GPU"
                               : "every GPU is hidden by device_mask";
  }
}

// The render nodes of the GPU's PCI function, and its NUMA node when SMI did not say.
void RocmAccelerator::readSysfs(Gpu& gpu) const {
  if (gpu.pciBus.empty()) return;
  namespace fs = std::filesystem;
  fs::path pci = fs::path(config_.sysfsRoot) / "bus/pci/devices" / gpu.pciBus;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(pci / "drm", error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("renderD", 0) == 0) gpu.renderNodes.push_back(config_.devRoot + "/dri/" + name);
  }
  std::sort(gpu.renderNodes.begin(), gpu.renderNodes.end());
  if (gpu.smi.numaNode < 0) {
    int node = -1;
    if (std::ifstream(pci / "numa_node") >> node; node >= 0) gpu.smi.numaNode = node;
  }
}

// ---- Identity and devices -----------------------------------------------------------------

std::string RocmAccelerator::describe() {
  json extra = {{"library", smi_ ? json(smi_->path()) : json(nullptr)},
                {"device_count", gpus_.size()},
                {"masked", masked_},
                {"cdi_specs", cdiSpecFiles_}};
  if (!reason_.empty()) extra["reason"] = reason_;
  if (smi_ && !smi_->missingSymbols().empty()) extra["missing_symbols"] = smi_->missingSymbols();
  if (!unmatchedMask_.empty()) extra["device_mask_unmatched"] = unmatchedMask_;
  return json{{"key", "rocm"}, {"extra_info", std::move(extra)}}.dump();
}

std::string RocmAccelerator::listDevices() {
  json devices = json::array();
  for (const Gpu& gpu : gpus_) {
    json entry = {{"id", gpu.id}, {"numa_node", gpu.smi.numaNode}, {"health", "healthy"}};
    if (!gpu.smi.name.empty()) entry["model"] = gpu.smi.name;
    if (!gpu.uuid.empty()) entry["uuid"] = gpu.uuid;
    if (!gpu.pciBus.empty()) entry["pci_bus"] = gpu.pciBus;
    if (gpu.smi.vramTotal) entry["memory"] = std::to_string(*gpu.smi.vramTotal);
    entry["extra"] = {{"render_nodes", gpu.renderNodes}};
    devices.push_back(std::move(entry));
  }
  return json{{"devices", std::move(devices)}}.dump();
}

// rocm.device is offered with no GPU too, so the manager learns its type.
std::string RocmAccelerator::slotTypes() {
  return json{{"slots", json::array({{{"name", "rocm.device"}, {"type", "count"}}})}}.dump();
}

std::string RocmAccelerator::allocMapSpec() {
  json devices = json::array();
  for (const Gpu& gpu : gpus_) devices.push_back({{"id", gpu.id}, {"capacity", "1"}});
  json map = {{"slot", "rocm.device"}, {"kind", "discrete"}, {"strategy", "evenly"}, {"devices", std::move(devices)}};
  return json{{"maps", json::array({std::move(map)})}}.dump();
}

// ---- Sessions --------------------------------------------------------------------------------

RocmAccelerator::Session RocmAccelerator::parseSession(std::string_view sessionJson) const {
  accel::SessionDocument session = accel::parseSessionDocument(sessionJson);
  Session result{session.id, {}};
  for (const auto& [slot, perDevice] : session.allocation.items()) {
    if (slot != "rocm.device") failInput("allocation: unknown slot \"" + slot + "\"");
    if (!perDevice.is_object()) failInput("allocation.rocm.device: expected an object of device amounts");
    for (const auto& [deviceId, amount] : perDevice.items()) {
      std::string where = "allocation.rocm.device." + deviceId;
      auto gpu = gpuById_.find(deviceId);
      if (gpu == gpuById_.end()) failInput(where + ": unknown device \"" + deviceId + "\"");
      std::string text = amount.is_string() ? amount.get<std::string>() : amount.dump();
      if (text == "0") continue;
      if (text != "1") failInput(where + ": a whole GPU is \"1\", got " + amount.dump());
      result.gpus.push_back(gpu->second);
    }
  }
  std::sort(result.gpus.begin(), result.gpus.end());
  return result;
}

// ROCR_VISIBLE_DEVICES takes the SMI indexes; HIP numbers only what ROCr shows, so
// HIP_VISIBLE_DEVICES is 0..n-1 over those. Empty for a session with no GPU: it sees none.
std::string RocmAccelerator::prepareSession(std::string_view sessionJson) {
  Session session = parseSession(sessionJson);
  if (prepared_.count(session.id) != 0) failInput("session " + session.id + " is prepared already; release it first");
  for (std::size_t index : session.gpus) {
    if (!inUseBy_[index].empty()) {
      failInput("GPU " + gpus_[index].id + " is held by session " + inUseBy_[index]);
    }
  }
  std::vector<std::string> rocr;
  std::vector<std::string> hip;
  // Every HIP process opens /dev/kfd, then the render nodes of the GPUs it may use.
  json devices = json::array();
  if (!session.gpus.empty()) devices.push_back(accel::deviceNodeEntry(config_.devRoot + "/kfd"));
  for (std::size_t index : session.gpus) {
    rocr.push_back(gpus_[index].id);
    hip.push_back(std::to_string(hip.size()));
    for (const std::string& node : gpus_[index].renderNodes) devices.push_back(accel::deviceNodeEntry(node));
    inUseBy_[index] = session.id;
  }
  json env = {{"ROCR_VISIBLE_DEVICES", accel::joined(rocr)}, {"HIP_VISIBLE_DEVICES", accel::joined(hip)}};
  // ROCm's user space lives in the image; a container needs only the nodes, or the CDI names.
  json answer = {{"env", std::move(env)}, {"devices", std::move(devices)}, {"mounts", json::array()}};
  if (std::vector<std::string> cdi = cdiDevices(session.gpus); !session.gpus.empty() && !cdi.empty()) {
    answer["cdi_devices"] = std::move(cdi);
  }
  prepared_.emplace(session.id, std::move(session.gpus));
  return answer.dump();
}

void RocmAccelerator::releaseSession(std::string_view sessionJson) {
  Session session = parseSession(sessionJson);
  auto prepared = prepared_.find(session.id);
  if (prepared == prepared_.end()) {
    throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + session.id + " is not prepared (or released already)");
  }
  for (std::size_t index : prepared->second) inUseBy_[index].clear();
  prepared_.erase(prepared);
}

// ---- Measures and health ---------------------------------------------------------------------

// Live figures from SMI; a figure the library cannot give is left out, not reported as 0.
json RocmAccelerator::measures(const std::vector<std::size_t>& gpus) const {
  json utilization = json::object();
  json memory = json::object();
  std::uint64_t busyTotal = 0;
  unsigned __int128 usedTotal = 0;
  for (std::size_t index : gpus) {
    Usage usage = smi_->usage(gpus_[index].smi.index);
    if (usage.busyPercent) {
      utilization[gpus_[index].id] = std::to_string(*usage.busyPercent);
      busyTotal += *usage.busyPercent;
    }
    if (usage.vramUsed) {
      memory[gpus_[index].id] = std::to_string(*usage.vramUsed);
      usedTotal += *usage.vramUsed;
    }
  }
  json list = json::array();
  if (!utilization.empty()) {
    list.push_back({{"key", "rocm_util"}, {"unit", "percent"}, {"value", std::to_string(busyTotal)},
                    {"per_device", std::move(utilization)}});
  }
  if (!memory.empty()) {
    list.push_back({{"key", "rocm_mem"}, {"unit", "bytes"}, {"value", accel::decimal(usedTotal)}, {"per_device", std::move(memory)}});
  }
  return json{{"measures", std::move(list)}};
}

std::string RocmAccelerator::nodeMeasures() {
  std::vector<std::size_t> all(gpus_.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return measures(all).dump();
}

std::string RocmAccelerator::sessionMeasures(std::string_view sessionJson) {
  Session session = parseSession(sessionJson);
  auto prepared = prepared_.find(session.id);
  if (prepared == prepared_.end()) {
    throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + session.id + " is not prepared");
  }
  return measures(prepared->second).dump();
}

// A GPU whose PCI query fails no longer answers SMI: unhealthy until it does again.
std::string RocmAccelerator::health() {
  json devices = json::array();
  for (const Gpu& gpu : gpus_) {
    std::string problem = smi_->probe(gpu.smi.index);
    json entry = {{"id", gpu.id}, {"health", problem.empty() ? "healthy" : "unhealthy"}};
    if (!problem.empty()) entry["reason"] = problem;
    devices.push_back(std::move(entry));
  }
  return json{{"devices", std::move(devices)}}.dump();
}

}  // namespace bai::rocm
