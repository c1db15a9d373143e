#include "cuda_fractional_accelerator.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace bai::cuda {
namespace {

using nlohmann::json;

constexpr const char* kSharesSlot = "cuda.shares";
constexpr const char* kDeviceSlot = "cuda.device";
constexpr std::uint64_t kMiB = 1024 * 1024;

[[noreturn]] void failInput(const std::string& message) {
  throw plugin::StatusError(BAI_ERR_INVALID_ARGUMENT, message);
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ",") + item;
  return text;
}

std::string decimal(unsigned __int128 value) {
  std::string text;
  do {
    text.insert(text.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  } while (value != 0);
  return text;
}

// floor(whole * part / total) of two quantities (total > 0).
std::uint64_t scaled(std::uint64_t whole, Quantity part, Quantity total) {
  return static_cast<std::uint64_t>(static_cast<unsigned __int128>(whole) * static_cast<unsigned __int128>(part.raw()) /
                                    static_cast<unsigned __int128>(total.raw()));
}

// Runs `argv` with `env` added to this process's environment, `input` on its stdin; waits.
// Returns an empty string on exit status 0, else what went wrong.
std::string runCommand(std::vector<std::string> argv, const std::vector<std::string>& env, const std::string& input) {
  std::vector<std::string> environment = env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& e) {
      return text.substr(0, text.find('=') + 1) == std::string_view(e).substr(0, e.find('=') + 1);
    });
    if (!replaced) environment.emplace_back(text);
  }
  std::vector<char*> envp;
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  int pipeFds[2] = {-1, -1};
  if (pipe2(pipeFds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipeFds[0], STDIN_FILENO);
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipeFds[0]);
  if (spawned != 0) {
    close(pipeFds[1]);
    return "cannot run " + argv[0] + ": " + std::strerror(spawned);
  }
  if (!input.empty()) {
    ssize_t written = write(pipeFds[1], input.data(), input.size());
    (void)written;  // a daemon that does not read its stdin is no error
  }
  close(pipeFds[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return argv[0] + (WIFEXITED(status) ? " exited with status " + std::to_string(WEXITSTATUS(status))
                                      : " was killed by signal " + std::to_string(WTERMSIG(status)));
}

}  // namespace

CudaFractionalAccelerator::CudaFractionalAccelerator(const plugin::Host& host, std::string_view configJson)
    : host_(host), config_(parseFractionalConfig(configJson)), health_(host_, "cuda-fractional", config_.criticalXids, config_.xidRecovery) {
  // Offered even with no GPU, so the manager learns their types.
  slots_.push_back({kSharesSlot, false, true, {}});
  slots_.push_back({kDeviceSlot, false, false, {}});
  discover();
  inUse_.assign(devices_.size(), Quantity());
  if (!noDeviceReason_.empty()) {
    host_.warning("cuda-fractional: no GPUs: " + noDeviceReason_);
  } else {
    host_.info("cuda-fractional: " + std::to_string(devices_.size()) + " GPUs and MIG slices through " +
               config_.nvmlLibrary);
  }
  if (config_.mps.manage) startMps();
}

CudaFractionalAccelerator::~CudaFractionalAccelerator() {
  try {
    stopMps();
  } catch (...) {  // a destructor never throws
  }
}

// ---- MPS daemon --------------------------------------------------------------------------

void CudaFractionalAccelerator::startMps() {
  if (slots_.front().devices.empty()) {
    mpsStatus_ = "not started: no GPU in shares mode";
    host_.info("cuda-fractional: mps.manage is set but no GPU is in shares mode: MPS not started");
    return;
  }
  std::error_code ignored;
  std::filesystem::create_directories(config_.mps.pipeDir, ignored);
  std::filesystem::create_directories(config_.mps.logDir, ignored);
  std::string failed = runCommand({config_.mps.control, "-d"},
                                  {"CUDA_MPS_PIPE_DIRECTORY=" + config_.mps.pipeDir,
                                   "CUDA_MPS_LOG_DIRECTORY=" + config_.mps.logDir},
                                  "");
  if (!failed.empty()) {
    mpsStatus_ = "start failed: " + failed;
    host_.warning("cuda-fractional: cannot start the MPS control daemon: " + failed);
    return;
  }
  mpsStarted_ = true;
  mpsStatus_ = "started";
  host_.info("cuda-fractional: started " + config_.mps.control + " -d (pipes in " + config_.mps.pipeDir + ")");
}

void CudaFractionalAccelerator::stopMps() {
  if (!mpsStarted_) return;
  mpsStarted_ = false;
  std::string failed = runCommand({config_.mps.control},
                                  {"CUDA_MPS_PIPE_DIRECTORY=" + config_.mps.pipeDir,
                                   "CUDA_MPS_LOG_DIRECTORY=" + config_.mps.logDir},
                                  "quit\n");
  if (!failed.empty()) host_.warning("cuda-fractional: cannot stop the MPS control daemon: " + failed);
}

// ---- Discovery ---------------------------------------------------------------------------

void CudaFractionalAccelerator::discover() {
  auto library = nvml::Library::open(config_.nvmlLibrary);
  if (!library) {
    noDeviceReason_ = library.error().message;
    return;
  }
  nvml_ = std::move(*library);
  for (const std::string& name : nvml_->missingOptional()) {
    host_.info("cuda-fractional: NVML lacks " + name + ": that feature is off");
  }
  driverVersion_ = nvml_->driverVersion();
  std::vector<std::string> skipped;
  auto gpus = nvml_->discover(config_.sysfsRoot, skipped);
  if (!gpus) {
    noDeviceReason_ = gpus.error().message;
    return;
  }
  for (const std::string& why : skipped) host_.warning("cuda-fractional: skipped " + why);
  countAtCreate_ = static_cast<unsigned>(gpus->size());
  for (const nvml::Gpu& gpu : *gpus) addGpu(gpu);
  for (const std::string& entry : config_.deviceMask) {
    bool used = std::find(maskedDevices_.begin(), maskedDevices_.end(), entry) != maskedDevices_.end();
    if (!used) host_.warning("cuda-fractional: device_mask entry \"" + entry + "\" matches no GPU or MIG slice");
  }
  for (const auto& [entry, mode] : config_.modes) {
    bool used = std::any_of(gpus->begin(), gpus->end(),
                            [&](const nvml::Gpu& g) { return entry == std::to_string(g.index) || entry == g.uuid; });
    if (!used) host_.warning("cuda-fractional: modes entry \"" + entry + "\" matches no GPU");
  }
  if (gpus->empty()) noDeviceReason_ = skipped.empty() ? "NVML reports no GPU" : "no GPU answers: " + skipped.front();
  else if (devices_.empty()) noDeviceReason_ = "every GPU is masked by device_mask";

  eventsStatus_ = health_.watch(*nvml_);
}

GpuMode CudaFractionalAccelerator::modeOf(const std::string& index, const std::string& uuid) const {
  if (auto byUuid = config_.modes.find(uuid); byUuid != config_.modes.end()) return byUuid->second;
  if (auto byIndex = config_.modes.find(index); byIndex != config_.modes.end()) return byIndex->second;
  return config_.defaultMode;
}

// min(memory / unit_mem, units / unit_proc), rounded down to the quantum; 1 when neither
// unit is set (or the GPU does not report the figure a unit needs).
Quantity CudaFractionalAccelerator::sharesOf(const nvml::Gpu& gpu) const {
  std::optional<Quantity> shares;
  if (config_.unitMem && gpu.memory) shares = Quantity::ratioFloor(*gpu.memory, *config_.unitMem);
  if (config_.unitProc && gpu.cores) {
    Quantity byUnits = Quantity::ratioFloor(*gpu.cores, *config_.unitProc);
    shares = shares ? std::min(*shares, byUnits) : byUnits;
  }
  if (!shares) return 1;
  __int128 quantum = config_.quantum.raw();
  return Quantity::fromRaw(shares->raw() - shares->raw() % quantum);
}

void CudaFractionalAccelerator::addGpu(const nvml::Gpu& gpu) {
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
  std::size_t parent = devices_.size();
  if (!gpu.migEnabled) {
    if (modeOf(index, gpu.uuid) == GpuMode::Shares) {
      device.capacity = sharesOf(gpu);
      if (device.capacity.isZero()) {
        host_.warning("cuda-fractional: GPU " + index + " holds less than one quantum of a share (unit_mem/unit_proc): not offered");
      } else {
        device.slot = kSharesSlot;
        device.shares = true;
        slots_[0].devices.push_back(parent);
      }
    } else {
      device.slot = kDeviceSlot;
      slots_[1].devices.push_back(parent);
    }
  }
  devices_.push_back(device);
  health_.add(device.id, device.uuid, device.handle, std::nullopt);
  deviceById_.emplace(device.id, parent);

  for (const nvml::MigSlice& slice : gpu.slices) {
    if (nvml::masked(config_.deviceMask, slice.uuid, slice.uuid)) {
      maskedDevices_.push_back(slice.uuid);
      continue;
    }
    if (slice.profile.empty()) {
      host_.warning("cuda-fractional: MIG slice " + slice.uuid + " (\"" + slice.name +
                    "\") has no profile in its name: not offered");
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
    if (slot == slots_.end()) slot = slots_.insert(slots_.end(), Slot{sliceDevice.slot, true, false, {}});
    slot->devices.push_back(at);
  }
}

const CudaFractionalAccelerator::Slot* CudaFractionalAccelerator::findSlot(std::string_view name) const {
  for (const Slot& slot : slots_) {
    if (slot.name == name) return &slot;
  }
  return nullptr;
}

// ---- Health ------------------------------------------------------------------------------

std::string CudaFractionalAccelerator::health() {
  if (nvml_) health_.poll(*nvml_, countAtCreate_);
  return json{{"devices", health_.report()}}.dump();
}

// ---- Identity and devices ----------------------------------------------------------------

std::string CudaFractionalAccelerator::describe() {
  std::size_t slices = std::count_if(devices_.begin(), devices_.end(), [](const Device& d) { return d.parent.has_value(); });
  json xids = json::array();
  for (unsigned long long xid : config_.criticalXids) xids.push_back(xid);
  json extra = {{"nvml_library", config_.nvmlLibrary},
                {"nvml_loaded", nvml_ != nullptr},
                {"device_count", devices_.size() - slices},
                {"shares_device_count", slots_[0].devices.size()},
                {"whole_device_count", slots_[1].devices.size()},
                {"mig_slice_count", slices},
                {"quantum_size", config_.quantum.toString()},
                {"masked", maskedDevices_},
                {"critical_xids", std::move(xids)},
                {"xid_events", eventsStatus_},
                {"mps", {{"manage", config_.mps.manage},
                         {"status", mpsStatus_},
                         {"pipe_dir", config_.mps.pipeDir},
                         {"log_dir", config_.mps.logDir}}}};
  if (config_.unitMem) extra["unit_mem"] = std::to_string(*config_.unitMem);
  if (config_.unitProc) extra["unit_proc"] = std::to_string(*config_.unitProc);
  if (!noDeviceReason_.empty()) extra["reason"] = noDeviceReason_;
  if (driverVersion_) extra["driver_version"] = *driverVersion_;
  if (nvml_) extra["missing_optional_symbols"] = nvml_->missingOptional();
  return json{{"key", "cuda"}, {"extra_info", std::move(extra)}}.dump();
}

std::string CudaFractionalAccelerator::listDevices() {
  json devices = json::array();
  for (const Device& device : devices_) {
    json entry = {{"id", device.id}, {"uuid", device.uuid}, {"numa_node", device.numaNode}};
    if (!device.model.empty()) entry["model"] = device.model;
    if (!device.pciBus.empty()) entry["pci_bus"] = device.pciBus;
    if (device.memory) entry["memory"] = std::to_string(*device.memory);
    if (device.cores) entry["processing_units"] = *device.cores;
    json extra = json::object();
    if (!device.slot.empty()) extra["slot"] = device.slot;
    if (device.shares) extra["shares"] = device.capacity.toString();
    if (device.parent) {
      extra["mig_parent"] = devices_[*device.parent].id;
      extra["mig_profile"] = device.migProfile;
    } else {
      extra["mig"] = device.migEnabled;
      if (!device.migEnabled) extra["mode"] = device.shares ? "shares" : "device";
    }
    entry["extra"] = std::move(extra);
    devices.push_back(std::move(entry));
  }
  return json{{"devices", std::move(devices)}}.dump();
}

std::string CudaFractionalAccelerator::slotTypes() {
  json slots = json::array();
  for (const Slot& slot : slots_) slots.push_back({{"name", slot.name}, {"type", slot.unique ? "unique" : "count"}});
  return json{{"slots", std::move(slots)}}.dump();
}

std::string CudaFractionalAccelerator::allocMapSpec() {
  json maps = json::array();
  for (const Slot& slot : slots_) {
    json devices = json::array();
    for (std::size_t index : slot.devices) {
      devices.push_back({{"id", devices_[index].id}, {"capacity", devices_[index].capacity.toString()}});
    }
    json map = {{"slot", slot.name},
                {"kind", slot.fraction ? "fraction" : "discrete"},
                {"strategy", "evenly"},
                {"devices", std::move(devices)}};
    if (slot.fraction) map["quantum"] = config_.quantum.toString();
    maps.push_back(std::move(map));
  }
  json exclusive = json::array({json::array({"cuda.device", "cuda.shares", "cuda.device:*-mig"})});
  return json{{"exclusive", std::move(exclusive)}, {"maps", std::move(maps)}}.dump();
}

// ---- Sessions ----------------------------------------------------------------------------

std::string CudaFractionalAccelerator::sessionId(std::string_view sessionJson) const {
  json session = json::parse(sessionJson, nullptr, false);
  if (session.is_discarded() || !session.is_object() || !session.contains("session_id") ||
      !session["session_id"].is_string() || session["session_id"].get<std::string>().empty()) {
    failInput("session_id: expected a non-empty string");
  }
  return session["session_id"].get<std::string>();
}

std::pair<std::string, std::vector<CudaFractionalAccelerator::Grant>> CudaFractionalAccelerator::parseSession(
    std::string_view sessionJson) const {
  std::string id = sessionId(sessionJson);
  json session = json::parse(sessionJson);
  auto allocation = session.find("allocation");
  if (allocation == session.end() || !allocation->is_object()) failInput("allocation: expected an object");
  std::vector<Grant> grants;
  for (const auto& [slotName, perDevice] : allocation->items()) {
    const Slot* slot = findSlot(slotName);
    if (slot == nullptr) failInput("allocation: unknown slot \"" + slotName + "\"");
    if (!perDevice.is_object()) failInput("allocation." + slotName + ": expected an object of device amounts");
    std::size_t inSlot = 0;
    for (const auto& [deviceId, value] : perDevice.items()) {
      std::string where = "allocation." + slotName + "." + deviceId;
      Result<Quantity> amount = value.is_string()         ? Quantity::parse(value.get<std::string>())
                                : value.is_number_integer() ? Result<Quantity>(Quantity(value.get<std::int64_t>()))
                                : value.is_number_float()   ? Quantity::fromDouble(value.get<double>())
                                                            : Result<Quantity>(Quantity(-1));
      if (!amount || !amount->isFinite() || amount->isNegative()) failInput(where + ": expected a non-negative decimal");
      auto device = deviceById_.find(deviceId);
      if (device == deviceById_.end()) failInput(where + ": unknown device \"" + deviceId + "\"");
      const Device& target = devices_[device->second];
      if (target.slot != slotName) failInput(where + ": the device is not in this slot");
      if (amount->isZero()) continue;
      if (!slot->fraction && *amount != 1) failInput(where + ": a whole device is \"1\", got " + value.dump());
      if (slot->fraction && amount->raw() % config_.quantum.raw() != 0) {
        failInput(where + ": " + amount->toString() + " is not a multiple of the quantum " + config_.quantum.toString());
      }
      ++inSlot;
      grants.push_back({device->second, *amount});
    }
    if (slot->unique && inSlot > 1) failInput("allocation." + slotName + ": a unique slot takes one device");
  }
  std::sort(grants.begin(), grants.end(), [](const Grant& a, const Grant& b) { return a.device < b.device; });
  return {id, grants};
}

// A share of a GPU in shares mode stands for unit_mem bytes and unit_proc units when set,
// else for its fraction of the GPU's capacity. Whole devices and slices are all theirs.
CudaFractionalAccelerator::GrantFigures CudaFractionalAccelerator::figures(const Grant& grant) const {
  const Device& device = devices_[grant.device];
  GrantFigures result;
  if (!device.shares) {
    result.memoryBytes = device.memory;
    result.processingUnits = device.cores;
    return result;
  }
  if (config_.unitMem) {
    result.memoryBytes = static_cast<std::uint64_t>(grant.amount.timesFloor(*config_.unitMem));
  } else if (device.memory) {
    result.memoryBytes = scaled(*device.memory, grant.amount, device.capacity);
  }
  if (config_.unitProc) {
    result.processingUnits = static_cast<std::uint64_t>(std::max<__int128>(1, grant.amount.timesFloor(*config_.unitProc)));
  } else if (device.cores) {
    result.processingUnits = std::max<std::uint64_t>(1, scaled(*device.cores, grant.amount, device.capacity));
  }
  // With unit_proc the share's units against the GPU's, else the share of the GPU itself.
  std::uint64_t percent = config_.unitProc && device.cores ? *result.processingUnits * 100 / *device.cores
                                                           : scaled(100, grant.amount, device.capacity);
  result.smPercent = static_cast<unsigned>(std::clamp<std::uint64_t>(percent, 1, 100));
  return result;
}

// Every session gets the visibility variables: one that asked for no GPU gets empty/"void".
// A session with shares also gets the MPS client limits; `<index>` of
// CUDA_MPS_PINNED_DEVICE_MEM_LIMIT is the device's ordinal in CUDA_VISIBLE_DEVICES.
std::string CudaFractionalAccelerator::prepareSession(std::string_view sessionJson) {
  auto [id, grants] = parseSession(sessionJson);
  if (prepared_.count(id) != 0) failInput("session " + id + " is prepared already; release it first");
  for (const Grant& grant : grants) {
    const Device& device = devices_[grant.device];
    nvml::HealthState state = health_.of(grant.device);
    if (state.health != nvml::Health::Healthy) {
      throw plugin::StatusError(BAI_ERR_UNAVAILABLE, "device " + device.id + " is " +
                                                         std::string(nvml::healthName(state.health)) + ": " + state.reason);
    }
    Quantity free = device.capacity - inUse_[grant.device];
    if (free < grant.amount) {
      failInput("device " + device.id + ": asked " + grant.amount.toString() + " of " + device.slot + ", free " +
                free.toString());
    }
  }
  std::vector<std::string> uuids;
  std::vector<std::string> memLimits;
  std::optional<unsigned> threadPercent;
  json limits = json::object();
  for (std::size_t i = 0; i < grants.size(); ++i) {
    const Device& device = devices_[grants[i].device];
    uuids.push_back(device.uuid);
    if (!device.shares) continue;
    GrantFigures f = figures(grants[i]);
    json limit = {{"shares", grants[i].amount.toString()}, {"sm_percent", std::to_string(f.smPercent)}};
    if (f.memoryBytes) {
      memLimits.push_back(std::to_string(i) + "=" + std::to_string(std::max<std::uint64_t>(1, *f.memoryBytes / kMiB)) + "M");
      limit["memory"] = std::to_string(*f.memoryBytes);
    }
    if (f.processingUnits) limit["processing_units"] = std::to_string(*f.processingUnits);
    threadPercent = threadPercent ? std::min(*threadPercent, f.smPercent) : f.smPercent;
    limits[device.id] = std::move(limit);
  }
  for (const Grant& grant : grants) inUse_[grant.device] += grant.amount;
  std::string visible = joined(uuids);
  json env = {{"CUDA_VISIBLE_DEVICES", visible}, {"NVIDIA_VISIBLE_DEVICES", uuids.empty() ? "void" : visible}};
  if (threadPercent) {
    env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = std::to_string(*threadPercent);
    if (!memLimits.empty()) env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = joined(memLimits);
    env["CUDA_MPS_PIPE_DIRECTORY"] = config_.mps.pipeDir;
    env["CUDA_MPS_LOG_DIRECTORY"] = config_.mps.logDir;
  }
  prepared_.emplace(id, std::move(grants));
  return json{{"env", std::move(env)}, {"devices", json::array()}, {"mounts", json::array()}, {"limits", std::move(limits)}}
      .dump();
}

void CudaFractionalAccelerator::releaseSession(std::string_view sessionJson) {
  std::string id = sessionId(sessionJson);
  auto prepared = prepared_.find(id);
  if (prepared == prepared_.end()) {
    throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + id + " is not prepared (or released already)");
  }
  for (const Grant& grant : prepared->second) inUse_[grant.device] -= grant.amount;
  prepared_.erase(prepared);
}

// ---- Measures ----------------------------------------------------------------------------

json CudaFractionalAccelerator::usageMeasures(const std::vector<std::size_t>& devices) const {
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
  list.push_back({{"key", "cuda_mem"}, {"unit", "bytes"}, {"value", decimal(memoryTotal)}, {"per_device", std::move(memory)}});
  return list;
}

std::string CudaFractionalAccelerator::nodeMeasures() {
  std::vector<std::size_t> all(devices_.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return json{{"measures", usageMeasures(all)}}.dump();
}

// Usage of the session's GPUs (a shared GPU's usage is the whole GPU's) and what the
// session was granted: memory bytes and SM percent per device.
std::string CudaFractionalAccelerator::sessionMeasures(std::string_view sessionJson) {
  std::string id = sessionId(sessionJson);
  auto prepared = prepared_.find(id);
  if (prepared == prepared_.end()) {
    throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + id + " is not prepared");
  }
  std::vector<std::size_t> devices;
  json memory = json::object();
  json sm = json::object();
  json shares = json::object();
  unsigned __int128 memoryTotal = 0;
  Quantity sharesTotal;
  for (const Grant& grant : prepared->second) {
    devices.push_back(grant.device);
    const Device& device = devices_[grant.device];
    GrantFigures f = figures(grant);
    if (f.memoryBytes) {
      memory[device.id] = std::to_string(*f.memoryBytes);
      memoryTotal += *f.memoryBytes;
    }
    sm[device.id] = std::to_string(f.smPercent);
    if (device.shares) {
      shares[device.id] = grant.amount.toString();
      sharesTotal += grant.amount;
    }
  }
  unsigned smMin = 100;
  for (const auto& [key, value] : sm.items()) smMin = std::min(smMin, static_cast<unsigned>(std::stoul(value.get<std::string>())));
  json list = usageMeasures(devices);
  list.push_back({{"key", "cuda_alloc_mem"}, {"unit", "bytes"}, {"value", decimal(memoryTotal)}, {"per_device", std::move(memory)}});
  list.push_back({{"key", "cuda_alloc_sm"},
                  {"unit", "percent"},
                  {"value", std::to_string(sm.empty() ? 0 : smMin)},
                  {"per_device", std::move(sm)}});
  list.push_back({{"key", "cuda_alloc_shares"}, {"value", sharesTotal.toString()}, {"per_device", std::move(shares)}});
  return json{{"measures", std::move(list)}}.dump();
}

}  // namespace bai::cuda
